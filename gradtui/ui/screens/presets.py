"""PresetPicker: the shipped presets with their titles and descriptions; Enter loads one.

The preset running now is listed too when it came from a TOML file of one's own (so one
can go back to it), and a path typed in the field at the bottom opens any TOML file. A
single click only highlights (and shows the description); Enter or a double click loads.
Dismisses with the chosen preset name or file path (the app stops the old session and
starts a new one), or None on Escape.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual import events
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from gradtui.config import ConfigError, load_config, preset_names


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


class PresetList(OptionList):
    """An OptionList on which one click highlights and a double click selects."""

    async def _on_click(self, event: events.Click) -> None:
        event.prevent_default()  # not OptionList's own handler, which selects on one click
        clicked = event.style.meta.get("option")
        if clicked is None or self.get_option_at_index(clicked).disabled:
            return
        self.highlighted = clicked
        if event.chain >= 2:
            self.action_select()


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
        max-height: 60%;
        padding: 0 1;
        border-top: solid $primary;
        color: $text-muted;
    }
    PresetPicker #preset-text { height: auto; }
    PresetPicker #preset-file { border: none; height: 1; padding: 0 1; background: $boost; }
    PresetPicker #preset-file:focus { background: $primary 30%; }
    """

    BINDINGS = [Binding("escape", "cancel", "cancel"), Binding("q", "cancel", "cancel", show=False)]

    def __init__(self, current: str = "", running=None) -> None:
        """``current``: the running preset's name or file path; ``running``: its Config, listed
        at the top when it came from a file (not one of the shipped presets)."""
        super().__init__()
        self._current = current
        self._entries = preset_entries()
        if running is not None and current and current not in {e[0] for e in self._entries}:
            title = f"{running.title or running.name} ({current})"
            self._entries.insert(0, (current, title, " ".join(running.description.split())))

    def compose(self) -> ComposeResult:
        box = Vertical()
        box.border_title = "presets · ↑/↓ · Enter or double click loads · Tab: a .toml file · Esc"
        with box:
            options = []
            for name, title, _ in self._entries:
                label = Text.assemble((name, "bold"), no_wrap=True, overflow="ellipsis")
                if name == self._current:
                    label.append(" (running)", "italic")
                label.append("  " + title, "dim")
                options.append(Option(label, id=name))
            yield PresetList(*options, id="preset-list")
            with VerticalScroll(id="preset-description"):
                yield Static("", id="preset-text")
            yield Input(placeholder="or type the path of a .toml file and press Enter", id="preset-file")

    def on_mount(self) -> None:
        names = [e[0] for e in self._entries]
        option_list = self.query_one(PresetList)
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
        self.query_one("#preset-text", Static).update(
            Text.assemble((f"{name}: {title}\n", "bold"), description)
        )
        # the description's height moves the list's bottom edge: keep the highlighted row in view
        self.call_after_refresh(self.query_one(PresetList).scroll_to_highlight)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._describe(event.option_index)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Load a TOML file by path; a file that cannot be loaded says why and stays open."""
        path = event.value.strip()
        if not path:
            return
        try:
            load_config(path)
        except ConfigError as err:
            self.query_one("#preset-text", Static).update(Text(f"cannot open {path}: {err}", "bold red"))
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
