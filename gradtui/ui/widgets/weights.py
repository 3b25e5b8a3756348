"""WeightPanel: per layer, a sparkline of the weight norm over time and the latest update ratio.

The background texts' signs: weights that never move (update ratio |dW|/|W| tiny, flat
sparkline) mean the gradient vanished before reaching them; weights that keep growing
mean it explodes. Rows line up with GradientBars (same grouping for the same height).
Every row's sparkline shows |W| relative to its value at the left edge, on one scale shared
by all rows (stated in the column title), so a layer that grows stands out from one that
stays still; scaling each row to its own range would make every layer look the same.
"""

from __future__ import annotations

from rich.text import Text

from gradtui.ui.widgets._format import fit, fmt, geomean, num, relative_sparkline, row_spans, shared_scale
from gradtui.ui.widgets._lines import LineWidget


class WeightPanel(LineWidget, can_focus=False):
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
        self.border_subtitle = "one scale, all rows"
        self._names: tuple = ()
        self._series: tuple = ()  # per point, per layer weight norms
        self._ratio: tuple = ()
        self._frozen_below = 1e-5
        self._footer = 0

    def show(self, snapshot, footer: int = 0) -> None:
        """Take the weight-norm history and latest update ratios from a Snapshot; ``footer`` is
        the bars' number of note lines (GradientBars.footer_lines), so the rows line up."""
        self._names = tuple(snapshot.layer_names)
        self._series = tuple(snapshot.history.layers.get("weight_norm", ()) or ())
        latest = snapshot.latest or {}
        if latest.get("nonfinite"):
            latest = snapshot.latest_finite or {}
        self._ratio = tuple(num(v) for v in latest.get("update_ratio", ()) or ())
        self._footer = int(footer)
        if snapshot.config is not None:
            self._frozen_below = snapshot.config.alerts.update_ratio_min
        self.redraw_lines()

    def _style(self, name: str):
        return self.component_style(f"weight-panel--{name}")

    def render(self) -> Text:
        width = max(10, self.content_region.width or self.size.width)
        height = max(3, self.content_region.height or self.size.height)
        n = len(self._names)
        if not n or not self._ratio:
            return Text("… waiting for the first step", self._style("note"), no_wrap=True)
        spans = row_spans(n, height, self._footer)
        spark_w = max(3, width - 10)
        rows = [[geomean(point[a:b]) for point in self._series[-spark_w:] if len(point) >= b] for a, b in spans]
        lo, hi = shared_scale(rows)
        out = Text(no_wrap=True, overflow="crop")
        scale = f"×{lo:.2g}–{hi:.2g}"
        out.append(f"|W|/start {scale}" if len(scale) + 10 <= width else fit(scale, width), self._style("note"))
        for (a, b), series in zip(spans, rows):
            ratio = geomean(self._ratio[a:b])
            out.append("\n")
            out.append(relative_sparkline(series, lo, hi).ljust(spark_w), self._style("spark"))
            frozen = not (ratio >= self._frozen_below)
            out.append(" ")
            out.append(("·" if frozen else "~") + fmt(ratio, 0).rjust(8), self._style("frozen" if frozen else "moving"))
        out.append("\n")
        out.append(fit(f"· frozen <{self._frozen_below:g} ~ moving", width), self._style("note"))
        return out
