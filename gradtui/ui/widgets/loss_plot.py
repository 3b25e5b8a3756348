"""LossPlot: train and held-out loss over steps (plotext), log y axis.

PlotextPlot rebuilds the whole plot on each render, so the series are decimated to
about one point per column and redrawn at most ``max_hz`` times a second (2 by default; at most 4).
"""

from __future__ import annotations

import math
import time

from textual_plotext import PlotextPlot


def decimate(xs, ys, points: int):
    """Keep about ``points`` evenly spaced (x, y) pairs with y finite and positive (log axis)."""
    pairs = [(x, y) for x, y in zip(xs, ys) if isinstance(y, (int, float)) and math.isfinite(y) and y > 0]
    if points <= 0 or len(pairs) <= points:
        return [p[0] for p in pairs], [p[1] for p in pairs]
    stride = len(pairs) / points
    picked = [pairs[int(i * stride)] for i in range(points)] + [pairs[-1]]
    return [p[0] for p in picked], [p[1] for p in picked]


def log_ticks(values, most: int = 6) -> list[int]:
    """Decade exponents for a log axis spanning more than a decade (else [] for plotext's own)."""
    if not values:
        return []
    lo, hi = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    if hi - lo < 2:
        return []
    step = max(1, math.ceil((hi - lo) / most))
    return list(range(lo, hi + 1, step))


class LossPlot(PlotextPlot):
    """Train (every recorded step) and eval loss against the step number."""

    DEFAULT_CSS = """
    LossPlot {
        height: 12;
        border: round $primary;
        border-title-color: $text;
    }
    """

    def __init__(self, *, max_hz: float = 2.0, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = "loss, log scale: ⠒ train  ● eval"
        self._min_interval = 1.0 / max_hz
        self._last_draw = 0.0
        self._version = -1

    def show(self, snapshot, force: bool = False) -> None:
        """Redraw from a Snapshot's history, at most ``max_hz`` per second unless forced."""
        now = time.monotonic()
        if not force and (snapshot.version == self._version or now - self._last_draw < self._min_interval):
            return
        if not self.display or self.size.width <= 0:
            return
        self._version, self._last_draw = snapshot.version, now
        hist = snapshot.history
        width = max(10, self.size.width - 8)
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        xs, ys = decimate(hist.steps, hist.loss, width)
        if xs:
            plt.plot(xs, ys, marker="braille")
        ex, ey = decimate(hist.eval_steps, hist.eval_loss, width)
        if ex:
            plt.scatter(ex, ey, marker="●")
        if xs or ex:
            plt.yscale("log")
            ticks = log_ticks(ys + ey)
            if ticks:
                plt.yticks([10.0**k for k in ticks], [f"1e{k:+d}" for k in ticks])
        plt.xlabel("step")
        self.refresh()
