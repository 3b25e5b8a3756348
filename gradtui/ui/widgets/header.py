"""StatusHeader: preset name, one-line model summary, step, steps/s, and running or paused.

Two lines: the preset and the run state on the first, the model summary
("mlp 20x64 sigmoid · init normal(0.01) · sgd lr 0.1 · no BN · no residual · no clip")
and the latest session message on the second.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from gradtui.config.summary import model_summary

STATUS_TEXT = {
    "compiling": "… compiling kernels, first run only",
    "running": "▶ running",
    "paused": "‖ paused",
    "finished": "■ finished",
    "stopped": "■ stopped",
    "error": "✗ error",
}
# Shown after the run state while the Experiment trains on its NumPy tier (gradtui.engine.tiers).
REFERENCE_TIER_TEXT = "NumPy tier · kernels compiling"


class StatusHeader(Widget, can_focus=False):
    """The top two lines: what is running and how fast."""

    COMPONENT_CLASSES = {"status-header--name", "status-header--state", "status-header--message",
                         "status-header--paused", "status-header--error"}
    """Preset name, run state (paused / error variants), and the session's last message."""

    DEFAULT_CSS = """
    StatusHeader {
        height: 2;
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

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._data: tuple = ("", "", "compiling", 0, 0.0, "", "")

    def show(self, snapshot, name: str = "", cfg=None, pending: str = "") -> None:
        """Take name, summary, status, step and speed from a Snapshot.

        ``cfg`` overrides the snapshot's config (a change just sent); ``pending`` describes
        that change while the session has not confirmed it yet.
        """
        cfg = cfg if cfg is not None else snapshot.config
        message = f"applying {pending}…" if pending else (snapshot.message or "")
        data = (
            name or (cfg.name if cfg is not None else ""),
            model_summary(cfg),
            snapshot.status,
            int(snapshot.step),
            float(snapshot.steps_per_second),
            message,
            getattr(snapshot, "tier", ""),
        )
        if data != self._data:
            self._data = data
            self.refresh()

    def _style(self, name: str):
        return self.get_component_rich_style(f"status-header--{name}", partial=True)

    def render(self) -> Text:
        """Two plain lines (no Rich table: this redraws every frame)."""
        name, summary, status, step, speed, message, tier = self._data
        width = max(20, self.content_region.width or self.size.width or 80)
        state_style = {"paused": "paused", "error": "error", "stopped": "paused", "finished": "paused"}.get(status, "state")
        right = Text.assemble(
            (f"step {step:,}", None),
            ("  ·  ", self._style("message")),
            (f"{speed:,.0f} steps/s", None),
            ("  ·  ", self._style("message")),
            (STATUS_TEXT.get(status, status), self._style(state_style)),
        )
        if tier == "reference":
            right.append_text(Text.assemble(("  ·  ", self._style("message")), (REFERENCE_TIER_TEXT, self._style("paused"))))
        left = Text.assemble(("gradtui ", self._style("message")), (name, self._style("name")))
        room = width - right.cell_len - 1
        if left.cell_len > room:
            left.truncate(max(0, room), overflow="ellipsis")
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append_text(left)
        out.append(" " * max(1, width - left.cell_len - right.cell_len))
        out.append_text(right)
        second = Text(summary)
        if message:
            second.append("  ·  " + message, self._style("message"))
        if second.cell_len > width:
            second.truncate(width - 1)
            second.append("…")
        out.append("\n")
        out.append_text(second)
        return out
