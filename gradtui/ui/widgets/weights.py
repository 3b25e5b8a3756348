"""WeightPanel: per layer, a sparkline of the weight norm over time and the latest update ratio.

The background texts' signs: weights that never move (update ratio |dW|/|W| tiny, flat
sparkline) mean the gradient vanished before reaching them; weights that keep growing
mean it explodes. Rows line up with GradientBars (same grouping for the same height).
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from gradtui.ui.widgets._format import fmt, geomean, group_label, groups, num, sparkline


class WeightPanel(Widget, can_focus=False):
    """Weight-norm sparklines and update ratios, one row per layer (or group of layers)."""

    COMPONENT_CLASSES = {"weight-panel--frozen", "weight-panel--moving", "weight-panel--spark", "weight-panel--note"}
    """Update ratio below the alert threshold (frozen) or above it (moving); the sparkline; notes."""

    DEFAULT_CSS = """
    WeightPanel {
        width: 28;
        height: 1fr;
        min-height: 6;
        padding: 0 1;
        border: round $primary;
        border-title-color: $text;
        text-wrap: nowrap;
        text-overflow: clip;
    }
    WeightPanel > .weight-panel--frozen { color: $error; }
    WeightPanel > .weight-panel--moving { color: $success; }
    WeightPanel > .weight-panel--spark { color: $accent; }
    WeightPanel > .weight-panel--note { color: $text-muted; text-style: italic; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = "weights"
        self._names: tuple = ()
        self._series: tuple = ()  # per point, per layer weight norms
        self._ratio: tuple = ()
        self._frozen_below = 1e-5

    def show(self, snapshot) -> None:
        """Take the weight-norm history and latest update ratios from a Snapshot."""
        self._names = tuple(snapshot.layer_names)
        self._series = tuple(snapshot.history.layers.get("weight_norm", ()) or ())
        self._ratio = tuple(num(v) for v in (snapshot.latest or {}).get("update_ratio", ()) or ())
        if snapshot.config is not None:
            self._frozen_below = snapshot.config.alerts.update_ratio_min
        self.refresh()

    def _style(self, name: str):
        return self.get_component_rich_style(f"weight-panel--{name}", partial=True)

    def render(self) -> Text:
        width = max(10, self.content_region.width or self.size.width)
        height = max(3, self.content_region.height or self.size.height)
        n = len(self._names)
        if not n or not self._ratio:
            return Text("", no_wrap=True)
        rows = height - 2
        if n > rows:
            rows -= 1
        spans = groups(n, rows)
        spark_w = max(3, width - 12)
        out = Text(no_wrap=True, overflow="crop")
        out.append("|W| over time".ljust(spark_w) + "  update", self._style("note"))
        for a, b in spans:
            series = [geomean(point[a:b]) for point in self._series[-spark_w:] if len(point) >= b]
            ratio = geomean(self._ratio[a:b])
            out.append("\n")
            out.append(sparkline(series, spark_w).ljust(spark_w), self._style("spark"))
            frozen = not (ratio >= self._frozen_below)
            out.append(" ")
            out.append(("·" if frozen else "~") + fmt(ratio, 0).rjust(8), self._style("frozen" if frozen else "moving"))
        out.append("\n")
        out.append(f"· frozen <{self._frozen_below:g} ~ moving", self._style("note"))
        return out

    @staticmethod
    def label(names, a: int, b: int) -> str:  # pragma: no cover - convenience for callers
        return group_label(names, a, b)
