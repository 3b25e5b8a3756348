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

from gradtui.control_channel import COMMANDS
from gradtui.diagnosis.pytorch_remedies import CODE_REMEDIES
from gradtui.sources.protocol import LIVE, REMOTE, SEEK
from gradtui.ui.keys import KEYS, PLAYBACK_KEYS

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


REMOTE_NOTE = (
    "The process that writes this record (gradtui.torch.watch) reads these keys through its control file "
    "(RECORD.control, readable and writable by you only) and applies them between two optimizer steps; "
    "each is recorded as a change (◆ marker)."
)
CODE_NOTE = (
    "gradtui did not build this model, so its alerts name the PyTorch code to change, for the layers they name "
    "(module paths as in the layer table); change it in the training script and start again."
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

    def __init__(self, cfg=None, capabilities=LIVE) -> None:
        """``capabilities`` of the source shown (gradtui.sources.protocol): a replay adds its
        playback keys, and a source that takes no changes says why the mitigations are off."""
        super().__init__()
        self._cfg = cfg
        self._caps = capabilities

    def compose(self) -> ComposeResult:
        scroll = VerticalScroll(id="help-body")
        scroll.border_title = "gradtui help — ↑/↓ PgUp/PgDn scroll · Escape closes"
        with scroll:
            if self._caps.allows(SEEK):
                yield Static("Playing a record back", classes="help--heading")
                yield Static(self._playback())
            if self._caps.allows(REMOTE):
                yield Static("Live remedies sent to the training process", classes="help--heading")
                yield Static(REMOTE_NOTE)
                yield Static(self._rows((c.key, c.does) for c in COMMANDS))
            elif not self._caps.controllable:
                yield Static(f"The mitigation keys are unavailable here: {self._caps.reason}.")
            if self._cfg is None:
                yield Static("Remedies for a PyTorch model: the code to change", classes="help--heading")
                yield Static(CODE_NOTE)
                yield Static(self._rows((r.name.replace("_", " "), r.why) for r in CODE_REMEDIES))
            yield Static("What the bars mean", classes="help--heading")
            yield Static(INTRO)
            yield Static(self._signs())
            yield Static("Mitigations: the key, what it does, which problem it helps", classes="help--heading")
            yield Static(KEY_NOTE)
            yield Static(self._table("mitigation"))
            yield Static("Running and viewing", classes="help--heading")
            yield Static(self._table(None))

    def _rows(self, rows) -> Table:
        table = Table.grid(padding=(0, 1, 1, 0))
        table.add_column(no_wrap=True, style="bold", min_width=5)
        table.add_column(ratio=1)
        for name, text in rows:
            table.add_row(name, text)
        return table

    def _playback(self) -> Table:
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True, style="bold", justify="center", min_width=5)
        table.add_column(ratio=1)
        for spec in PLAYBACK_KEYS:
            table.add_row(spec.label, spec.does)
        return table

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
            if spec.needs == REMOTE and not self._caps.allows(REMOTE):
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
