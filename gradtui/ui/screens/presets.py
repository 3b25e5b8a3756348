"""PresetPicker: the shipped presets with their titles and descriptions; Enter loads one.

Dismisses with the chosen preset name (the app stops the old session and starts a
new one), or None on Escape.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from gradtui.config import load_config, preset_names


def preset_entries() -> list[tuple[str, str, str]]:
    """(name, title, description) of every shipped preset; unreadable ones say why."""
    out = []
    for name in preset_names():
        try:
            cfg = load_config(name)
            out.append((name, cfg.title, " ".join(cfg.description.split())))
        except Exception as err:  # a broken preset must not break the picker
            out.append((name, "(cannot be loaded)", str(err)))
    return out


class PresetPicker(ModalScreen[str | None]):
    """Choose a preset: arrows move, Enter loads, Escape cancels."""

    DEFAULT_CSS = """
    PresetPicker {
        align: center middle;
        background: $background 60%;
    }
    PresetPicker > Vertical {
        width: 96%;
        max-width: 110;
        height: 92%;
        border: round $accent;
        border-title-color: $text;
        background: $surface;
    }
    PresetPicker OptionList { height: 1fr; min-height: 5; border: none; text-wrap: nowrap; text-overflow: ellipsis; }
    PresetPicker #preset-description {
        height: auto;
        max-height: 50%;
        padding: 0 1;
        border-top: solid $primary;
        color: $text-muted;
    }
    """

    BINDINGS = [Binding("escape", "cancel", "cancel"), Binding("q", "cancel", "cancel", show=False)]

    def __init__(self, current: str = "") -> None:
        super().__init__()
        self._current = current
        self._entries = preset_entries()

    def compose(self) -> ComposeResult:
        box = Vertical()
        box.border_title = "presets — ↑/↓ choose · Enter load · Escape cancel"
        with box:
            options = []
            for name, title, _ in self._entries:
                label = Text.assemble((name, "bold"), no_wrap=True, overflow="ellipsis")
                if name == self._current:
                    label.append(" (running)", "italic")
                label.append("  " + title, "dim")
                options.append(Option(label, id=name))
            yield OptionList(*options, id="preset-list")
            yield Static("", id="preset-description")

    def on_mount(self) -> None:
        names = [e[0] for e in self._entries]
        option_list = self.query_one(OptionList)
        if self._current in names:
            option_list.highlighted = names.index(self._current)
        elif names:
            option_list.highlighted = 0
        option_list.focus()
        self._describe(option_list.highlighted)

    def _describe(self, index) -> None:
        if index is None or not self._entries:
            return
        name, title, description = self._entries[index]
        self.query_one("#preset-description", Static).update(
            Text.assemble((f"{name}: {title}\n", "bold"), description)
        )

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._describe(event.option_index)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
