"""HelpScreen: what the bars mean, every key, and what each mitigation does and which problem it helps.

The plain words come from the background texts (vanishing: early layers get a tiny
fraction of the last layer's gradient, their weights barely move and the loss goes
flat; exploding: gradients and weights grow until they become NaN, the loss
oscillates). The key table is built from :data:`gradtui.ui.keys.KEYS`.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from gradtui.ui.keys import KEYS

INTRO = (
    "Each bar is one layer, the input layer at the top and the output at the bottom. Its length is the size "
    "of the gradient that reaches the layer, on a log scale from 1e-12 to 1e+3: every few characters is "
    "ten times more. Training multiplies the gradient layer by layer on its way back from the loss (the "
    "chain rule), so a factor below 1 per layer makes it shrink exponentially with depth, a factor above 1 "
    "makes it grow."
)
SIGNS = (
    ("↓ vanishing", "the layer gets less than a thousandth of the last hidden layer's gradient, or none at all "
     "(the vanishing alert rises when the first layer stays like this for a while). Its weights barely "
     "move (tiny update ratio, flat weight sparkline) and the loss stays flat: the early layers stop learning."),
    ("↑ exploding", "the gradient is huge (above 1e3). Weights grow step after step, the loss jumps around, "
     "and finally numbers overflow to NaN."),
    ("✓ healthy", "the gradient reaching this layer is within a factor 1000 of the last hidden layer's."),
    ("◆ before", "after you press a key, the profile from just before the change stays as a marker, so you "
     "can compare before and after."),
)


KEY_NOTE = (
    "When an alert lists a fix under a key, that key applies exactly that fix (for example a → relu); "
    "otherwise the key moves to the next choice. Changes to activation, batch norm, residual, clipping, "
    "optimiser and learning rate keep the trained weights; init, depth and cell changes restart with "
    "fresh weights."
)


class HelpScreen(ModalScreen[None]):
    """A scrollable help page over the main screen; Escape, ? or q closes it."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        background: $background 60%;
    }
    HelpScreen > VerticalScroll {
        width: 96%;
        max-width: 110;
        height: 92%;
        border: round $accent;
        border-title-color: $text;
        background: $surface;
        padding: 0 1;
    }
    HelpScreen .help--heading { text-style: bold; color: $accent; margin-top: 1; }
    HelpScreen Table { color: $text; }
    """

    BINDINGS = [
        Binding("escape", "close", "close"),
        Binding("question_mark", "close", "close", show=False),
        Binding("q", "close", "close", show=False),
    ]

    def __init__(self, cfg=None) -> None:
        super().__init__()
        self._cfg = cfg

    def compose(self) -> ComposeResult:
        scroll = VerticalScroll(id="help-body")
        scroll.border_title = "gradtui help — ↑/↓ PgUp/PgDn scroll · Escape closes"
        with scroll:
            yield Static("What the bars mean", classes="help--heading")
            yield Static(INTRO)
            yield Static(self._signs())
            yield Static("Mitigations: the key, what it does, which problem it helps", classes="help--heading")
            yield Static(KEY_NOTE)
            yield Static(self._table("mitigation"))
            yield Static("Running and viewing", classes="help--heading")
            yield Static(self._table(None))

    def _signs(self) -> Table:
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True, style="bold")
        table.add_column(ratio=1)
        for sign, text in SIGNS:
            table.add_row(sign, text)
        return table

    def _table(self, group: str | None) -> Table:
        table = Table.grid(padding=(0, 1, 1 if group == "mitigation" else 0, 0))
        table.add_column(no_wrap=True, style="bold", justify="center", min_width=5)
        table.add_column(ratio=1)
        for spec in KEYS:
            if (group == "mitigation") != (spec.group == "mitigation"):
                continue
            text = Text(spec.does)
            if spec.helps:
                text.append("\n")
                text.append("Helps: ", "bold")
                text.append(spec.helps)
            if not spec.applies_to(self._cfg):
                text.append(f"  (not for a {self._cfg.model.kind} model)", "dim")
                table.add_row(Text(spec.label, style="dim"), Text(text.plain, style="dim"))
            else:
                table.add_row(spec.label, text)
        return table

    def action_close(self) -> None:
        self.dismiss(None)
