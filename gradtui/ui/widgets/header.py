"""StatusHeader: preset name, one-line model summary, step, steps/s, and running or paused.

The preset, the step, the latest train loss, the held-out accuracy, steps/s and the run
state on the first line (steps/s, then the figures, give way when narrow: numbers are never
cut); the model summary ("mlp 20x64 sigmoid · init normal(0.01) · sgd lr 0.1 · no BN · no
residual · no clip") on the second, with the session's latest message beside it, or under
it on up to two more lines when it does not fit (then it ends in '…', and the alerts panel
shows it whole).
"""

from __future__ import annotations

import textwrap

from rich.text import Text

from gradtui.config.summary import layers_summary, model_summary, summary_parts
from gradtui.ui.widgets._format import fit, fit_parts
from gradtui.ui.widgets._lines import LineWidget

STATUS_TEXT = {
    "compiling": "… compiling kernels, first run only",
    "waiting": "… waiting for the record",
    "running": "▶ running",
    "paused": "‖ paused",
    "finished": "■ finished",
    "stopped": "■ stopped",
    "error": "✗ error",
}


def loss_figures(snapshot) -> list[str]:
    """'loss 0.693' (latest train step) and 'held-out acc 52%' (or its loss, for regression)."""
    out = []
    latest = snapshot.latest or {}
    if latest.get("nonfinite"):
        latest = snapshot.latest_finite or {}
    loss = latest.get("loss")
    if isinstance(loss, (int, float)):
        out.append(f"loss {loss:.3g}")
    ev = snapshot.evaluation or {}
    acc, ev_loss = ev.get("accuracy"), ev.get("loss")
    if isinstance(acc, (int, float)) and acc == acc:
        out.append(f"held-out acc {100 * acc:.1f}%")
    elif isinstance(ev_loss, (int, float)):
        out.append(f"held-out loss {ev_loss:.3g}")
    return out


STATUS_TEXT_SPEED = "{:,.0f} steps/s"
SHORT_SCREEN = 32  # below this many rows the message gets one line under the summary


REPLAY_STATE = {"running": "▶ replay", "paused": "‖ replay paused", "finished": "■ end of replay"}
FOLLOW_STATE = {"running": "▶ watching", "paused": "‖ writer quiet", "finished": "■ writer ended"}
# Said after the run state while the Experiment trains on its NumPy tier (gradtui.engine.tiers).
REFERENCE_TIER_TEXT = "NumPy tier · kernels compiling"


def state_text(snapshot) -> str:
    """The run state as the header says it; before the run's first step it says it waits, and
    until the kernels take over that the NumPy tier is training; a replayed or followed record
    says so."""
    status = snapshot.status
    if snapshot.source in ("replay", "follow"):
        words = REPLAY_STATE if snapshot.source == "replay" else FOLLOW_STATE
        return words.get(status, STATUS_TEXT.get(status, status))
    if status == "running" and not snapshot.latest:
        text = "… waiting for the first step"
    elif status == "paused":
        text = "‖ paused · space resumes"
    else:
        text = STATUS_TEXT.get(status, status)
    if getattr(snapshot, "tier", "") == "reference":
        text += " · " + REFERENCE_TIER_TEXT
    return text


class StatusHeader(LineWidget, can_focus=False):
    """The top two lines: what is running and how fast."""

    COMPONENT_CLASSES = {"status-header--name", "status-header--state", "status-header--message",
                         "status-header--paused", "status-header--error"}
    """Preset name, run state (paused / error variants), and the session's last message."""

    DEFAULT_CSS = """
    StatusHeader {
        height: auto;
        max-height: 4;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    StatusHeader > .status-header--name { text-style: bold; color: $accent; }
    StatusHeader > .status-header--state { color: $success; text-style: bold; }
    StatusHeader > .status-header--paused { color: $warning; text-style: bold; }
    StatusHeader > .status-header--error { color: $error; text-style: bold; }
    StatusHeader > .status-header--message { color: $text-muted; }
    """

    MESSAGE_LINES = 2
    """Lines the session's message may take under the summary; beyond them it ends in '…'."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._data: tuple = ("", "", "compiling", "", "", 0.0, (), "")
        self.message_cut = False
        """True when the last message did not fit in MESSAGE_LINES (the alerts panel shows it whole)."""
        self._parts: tuple = ()
        self._height = 0  # lines the last text took (the summary's two and the message's own)

    def show(self, snapshot, name: str = "", cfg=None, pending: str = "") -> None:
        """Take name, summary, status, step, speed and the loss figures from a Snapshot.

        ``cfg`` overrides the snapshot's config (a change just sent); ``pending`` describes
        that change while the session has not confirmed it yet.
        """
        cfg = cfg if cfg is not None else snapshot.config
        message = f"applying {pending}…" if pending else (snapshot.message or "")
        summary = model_summary(cfg) if cfg is not None else layers_summary(snapshot.layers)
        data = (
            name or (cfg.name if cfg is not None else ""),
            summary,
            snapshot.status,
            state_text(snapshot),
            snapshot.position or f"step {int(snapshot.step):,}",
            float(snapshot.steps_per_second),
            tuple(loss_figures(snapshot)),
            message,
        )
        width = max(20, self.content_region.width or self.size.width or 80)
        own_lines, cut = self._message_lines(self._line_two(data[6], summary), message, width)
        self.message_cut = len(cut) > 0
        self._parts = tuple(summary_parts(cfg)) if cfg is not None else ((summary,) if summary else ())
        if data != self._data:
            height = 2 + len(own_lines)
            self._data = data
            if height != self._height:  # a new layout re-renders the whole screen: only when the height changes
                self._height = height
                self.redraw_all(layout=True)
            else:
                self.redraw_lines()  # a frame repaints the step line, rarely more

    @staticmethod
    def _line_two(figures, summary: str) -> str:
        return "".join(f"{text} · " for text in figures) + summary

    def _message_lines(self, summary: str, message: str, width: int) -> tuple[list[str], str]:
        """The message's own lines (none when it fits beside the summary) and the part cut off."""
        if not message or len(summary) + 5 + len(message) <= width:
            return [], ""
        lines = textwrap.wrap(message, width) or [""]
        most = self.MESSAGE_LINES if self.screen.size.height >= SHORT_SCREEN else 1  # rows are scarce: keep them for the bars
        kept = lines[:most]
        rest = " ".join(lines[most:])
        if rest:
            kept[-1] = fit(kept[-1] + " " + rest, width)
        return kept, rest

    def _style(self, name: str):
        return self.component_style(f"status-header--{name}")

    def render(self) -> Text:
        """Plain lines (no Rich table: this redraws every frame); numbers are never cut."""
        name, summary, status, state, position, speed, figures, message = self._data
        width = max(20, self.content_region.width or self.size.width or 80)
        state_style = {"paused": "paused", "error": "error", "stopped": "paused", "finished": "paused",
                       "waiting": "paused"}.get(status, "state")
        sep = ("  ·  ", self._style("message"))
        left = Text.assemble(("gradtui ", self._style("message")), (name, self._style("name")))
        parts = [(position, None), sep, (STATUS_TEXT_SPEED.format(speed), None), sep, (state, self._style(state_style))]
        right = Text.assemble(*parts)
        if left.cell_len + 1 + right.cell_len > width:  # steps/s gives way first; the step and the state stay
            right = Text.assemble(parts[0], (" · ", self._style("message")), parts[-1])
        room = width - right.cell_len - 1
        if left.cell_len > room:
            left.truncate(max(0, room - 1))
            left.append("…")
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append_text(left)
        out.append(" " * max(1, width - left.cell_len - right.cell_len))
        out.append_text(right)
        lines, _ = self._message_lines(self._line_two(figures, summary), message, width)
        second = Text()
        for text in figures:  # the numbers first, whole; the summary gives way
            second.append(text, "bold")
            second.append(" · ", self._style("message"))
        second.append(fit_parts(self._parts, max(1, width - second.cell_len)))
        if message and not lines:
            second.append("  ·  " + message, self._style("message"))
        out.append("\n")
        out.append_text(second)
        for line in lines:
            out.append("\n")
            out.append(line, self._style("message"))
        return out
