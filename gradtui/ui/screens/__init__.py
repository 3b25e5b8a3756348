"""Screens over the main view: the help page and the preset picker."""

from gradtui.ui.screens.help import HelpScreen
from gradtui.ui.screens.presets import PresetPicker

__all__ = ["HelpScreen", "PresetPicker"]
