"""LossPlot: train and held-out loss over steps (plotext), log y axis.

PlotextPlot rebuilds the whole plot on each render, so the series are decimated to
about one point per column and redrawn at most ``max_hz`` times a second (1 by default; at most 4):
one draw takes about 10 ms of the interface thread, which holds the GIL training needs meanwhile.
"""

from __future__ import annotations

import math
import time

from textual_plotext import PlotextPlot

from gradtui.ui.widgets._lines import set_titles


def decimate(xs, ys, points: int):
    """Keep about ``points`` evenly spaced (x, y) pairs with y finite and positive (log axis)."""
    pairs = [(x, y) for x, y in zip(xs, ys) if isinstance(y, (int, float)) and math.isfinite(y) and y > 0]
    if points <= 0 or len(pairs) <= points:
        return [p[0] for p in pairs], [p[1] for p in pairs]
    stride = len(pairs) / points
    picked = [pairs[int(i * stride)] for i in range(points)] + [pairs[-1]]
    return [p[0] for p in picked], [p[1] for p in picked]


def log_ticks(values, most: int = 5) -> list[tuple[float, str]]:
    """(value, label) ticks for a log axis over ``values``: decades when two or more lie in the
    range, else a few values evenly spaced in log between the lowest and the highest, with as
    many digits as it takes to tell them apart (plotext's own give a single '1e+0' there)."""
    vals = [v for v in values if v > 0 and math.isfinite(v)]
    if not vals:
        return []
    lo, hi = min(vals), max(vals)
    a, b = math.ceil(math.log10(lo)), math.floor(math.log10(hi))
    if b - a >= 1:
        step = max(1, math.ceil((b - a + 1) / most))
        return [(10.0**k, f"1e{k:+d}") for k in range(a, b + 1, step)]
    if hi <= lo * 1.0001:
        lo, hi = lo * 0.95, hi * 1.05
    points = [lo * (hi / lo) ** (i / 3) for i in range(4)]
    for digits in range(2, 7):
        labels = [f"{v:.{digits}g}" for v in points]
        if len(set(labels)) == len(labels):
            break
    return [(float(label), label) for label in labels]


def window_start(steps, markers) -> int | None:
    """The first step to plot: the last change's step minus as many steps as have run since,
    so the time since the change fills at least half the plot (None: plot everything)."""
    if not steps or not markers:
        return None
    last = steps[-1]
    changes = [m for m, _ in markers if steps[0] < m <= last]
    if not changes:
        return None
    start = max(steps[0], 2 * changes[-1] - last)
    return start if start > steps[0] else None


class LossPlot(PlotextPlot):
    """Train (every recorded step) and eval loss against the step number; changes marked."""

    DEFAULT_CSS = """
    LossPlot {
        height: 12;
        border: round $primary;
        border-title-color: $text;
        border-subtitle-color: $warning;
    }
    """

    TITLE = "loss, log scale: ⠒ train  ● eval"

    def __init__(self, *, max_hz: float = 1.0, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = self.TITLE
        self._min_interval = 1.0 / max_hz
        self._last_draw = 0.0
        self._version = -1
        self._snapshot = None

    def on_resize(self) -> None:
        """Shown again after a resize (or resized): draw the last snapshot at once, also while paused."""
        if self._snapshot is not None:
            self.show(self._snapshot, force=True)

    def show(self, snapshot, force: bool = False) -> None:
        """Redraw from a Snapshot's history, at most ``max_hz`` per second unless forced."""
        self._snapshot = snapshot
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
        start = window_start(hist.steps, hist.markers)
        keep = (lambda x: True) if start is None else (lambda x: x >= start)
        xs, ys = decimate(*_since(hist.steps, hist.loss, keep), width)
        if xs:
            plt.plot(xs, ys, marker="braille")
        ex, ey = decimate(*_since(hist.eval_steps, hist.eval_loss, keep), width)
        if ex:
            plt.scatter(ex, ey, marker="●")
        marks = [(m, text) for m, text in hist.markers if xs and xs[0] <= m <= xs[-1]]
        for m, _ in marks:
            plt.vline(m, "orange")
        if xs or ex:
            plt.yscale("log")
            ticks = log_ticks(ys + ey)
            if ticks:
                plt.yticks([v for v, _ in ticks], [label for _, label in ticks])
        plt.xlabel("step")
        subtitle = f"│ step {marks[-1][0]:,}: {marks[-1][1]}" if marks else ""
        set_titles(self, self.TITLE if start is None else f"loss from step {start:,} · ⠒ train ● eval",
                   subtitle if xs or ex else "… waiting for the first step")
        self.refresh()


def _since(xs, ys, keep):
    pairs = [(x, y) for x, y in zip(xs, ys) if keep(x)]
    return [p[0] for p in pairs], [p[1] for p in pairs]
