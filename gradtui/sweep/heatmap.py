"""The heatmap's data: the chosen outcome averaged over seeds, per (x, y) point of the grid.

The x axis is the last swept key, the y axis the first (for the phase diagram: sigma_w^2 across,
depth up); a one-key sweep has one row. Both the terminal view (gradtui.sweep.live) and the
file (gradtui.sweep.svg) draw from a Heatmap, so they show the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

METRICS = ("accuracy", "best_accuracy", "trained", "final_loss", "best_loss", "train_loss",
           "steps_to_threshold", "attenuation")
UNIT_RANGE = ("accuracy", "best_accuracy", "trained")  # drawn on [0, 1] (accuracies on [chance, 1])
# a perceptually uniform colour map (viridis, 9 stops), low to high
VIRIDIS = ("#440154", "#472c7a", "#3b518b", "#2c718e", "#21908d", "#27ad81", "#5cc863", "#aadc32", "#fde725")


@dataclass
class Heatmap:
    """Outcome values per grid point; `failed` counts cells that errored or went non-finite."""

    metric: str
    x_key: str
    x_values: tuple
    y_key: str | None
    y_values: tuple
    x_sigma_w2: tuple | None = None  # sigma_w^2 of each column, when the columns fix it
    seeds: int = 1
    chance: float = 0.0  # the accuracy of guessing (1/classes): the colour scale of accuracies starts there
    values: dict = field(default_factory=dict)  # (ix, iy) -> [value per finished seed]
    failed: dict = field(default_factory=dict)  # (ix, iy) -> number of failed seeds

    def add(self, x, y, row: dict) -> None:
        """Add one finished cell's row (values as in the table)."""
        at = (self.x_values.index(x), self.y_values.index(y) if self.y_key else 0)
        if row.get("error") or row.get("nonfinite"):
            self.failed[at] = self.failed.get(at, 0) + 1
        value = row.get(self.metric)
        if isinstance(value, bool):
            value = float(value)
        if row.get("nonfinite") and self.metric in UNIT_RANGE:
            value = 0.0  # a diverged net is untrained: it counts, as 0
        if value is not None and isinstance(value, (int, float)) and math.isfinite(value):
            self.values.setdefault(at, []).append(float(value))
        else:
            self.values.setdefault(at, [])

    def mean(self, ix: int, iy: int) -> float | None:
        vals = self.values.get((ix, iy))
        return sum(vals) / len(vals) if vals else None

    def done(self, ix: int, iy: int) -> bool:
        return (ix, iy) in self.values

    def value_range(self) -> tuple[float, float, bool]:
        """(low, high, log) of the colour scale."""
        if self.metric in UNIT_RANGE:
            return (0.0 if self.metric == "trained" else self.chance), 1.0, False
        finite = [v for vals in self.values.values() for v in vals if math.isfinite(v)]
        if not finite:
            return 0.0, 1.0, False
        lo, hi = min(finite), max(finite)
        log = lo > 0 and hi / lo > 10
        return (lo, hi, log) if hi > lo else (lo - 0.5, hi + 0.5, False)

    def fraction(self, value: float) -> float:
        """Where a value sits on the colour scale, 0..1."""
        lo, hi, log = self.value_range()
        if log:
            value, lo, hi = math.log(max(value, lo)), math.log(lo), math.log(hi)
        return min(max((value - lo) / (hi - lo), 0.0), 1.0) if hi > lo else 0.5

    def colour(self, value: float) -> str:
        return colour_at(self.fraction(value))

    def x_position(self, sigma_w2: float) -> float:
        """Column coordinate (cell i spans [i, i+1]) of a sigma_w^2, interpolated between column centres."""
        return _interpolate(sigma_w2, self.x_sigma_w2 or self.x_values)

    def y_position(self, value: float) -> float:
        return _interpolate(value, self.y_values)


def colour_at(t: float) -> str:
    """Linear interpolation between the VIRIDIS stops, t in [0, 1]."""
    t = min(max(t, 0.0), 1.0) * (len(VIRIDIS) - 1)
    i = min(int(t), len(VIRIDIS) - 2)
    f = t - i
    a, b = VIRIDIS[i], VIRIDIS[i + 1]
    rgb = [round(int(a[k:k + 2], 16) * (1 - f) + int(b[k:k + 2], 16) * f) for k in (1, 3, 5)]
    return "#%02x%02x%02x" % tuple(rgb)


def _interpolate(value: float, axis) -> float:
    """Piecewise-linear map from axis values (increasing) to centres 0.5, 1.5, ...; extrapolates."""
    pts = [float(v) for v in axis]
    if len(pts) == 1:
        return 0.5
    for i in range(len(pts) - 1):
        if value <= pts[i + 1] or i == len(pts) - 2:
            a, b = pts[i], pts[i + 1]
            return i + 0.5 + (value - a) / (b - a) if b != a else i + 0.5
    return len(pts) - 0.5
