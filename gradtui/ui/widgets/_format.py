"""Plain helpers shared by the widgets: number formatting, health, row grouping, summaries.

No Textual here, so the rules (what counts as vanishing, how rows are grouped) are
testable on their own and the same in every panel.
"""

from __future__ import annotations

import math

LOG_MIN, LOG_MAX = -12.0, 3.0  # the bars' fixed log10 scale: 1e-12 .. 1e+3
VANISHING_FLOOR = 1e-10  # below this a gradient is vanishing whatever the reference

HEALTH_SYMBOL = {"vanishing": "↓", "healthy": "✓", "exploding": "↑", "nonfinite": "✗", "none": " "}
SPARK = "▁▂▃▄▅▆▇█"


def num(value) -> float:
    """A float from a record value (which may be the strings "nan"/"inf" or None)."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def fmt(value, digits: int = 1) -> str:
    """Compact scientific notation: 3.2e-09, 'nan', 'inf'."""
    v = num(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    return f"{v:.{digits}e}"




def health(value: float, reference: float, vanishing_ratio: float, exploding_norm: float) -> str:
    """vanishing / healthy / exploding / nonfinite for one norm, relative to the reference (last) one."""
    if not math.isfinite(value):
        return "nonfinite"
    if value > exploding_norm:
        return "exploding"
    if value < VANISHING_FLOOR:
        return "vanishing"
    if math.isfinite(reference) and reference > 0 and value < vanishing_ratio * reference:
        return "vanishing"
    return "healthy"


def bar_fraction(value: float) -> float:
    """Position of a value on the fixed log scale, 0..1 (0 for zero, 1 for inf)."""
    if math.isnan(value):
        return 0.0
    if value <= 0:
        return 0.0
    if math.isinf(value):
        return 1.0
    x = (math.log10(value) - LOG_MIN) / (LOG_MAX - LOG_MIN)
    return min(1.0, max(0.0, x))


def groups(n: int, rows: int) -> list[tuple[int, int]]:
    """Split n items into at most ``rows`` consecutive [start, stop) groups, sizes differing by at most one.

    Every row is used; the larger groups come first (the input side, where vanishing shows least detail).
    """
    if n <= 0:
        return []
    rows = max(1, min(rows, n))
    base, extra = divmod(n, rows)
    out, start = [], 0
    for i in range(rows):
        size = base + (1 if i < extra else 0)
        out.append((start, start + size))
        start += size
    return out


def geomean(values) -> float:
    """Geometric mean of positive finite values; nan/inf propagate so a bad layer is never hidden."""
    vals = [num(v) for v in values]
    if not vals:
        return math.nan
    if any(math.isnan(v) for v in vals):
        return math.nan
    if any(math.isinf(v) for v in vals):
        return math.inf
    if any(v <= 0 for v in vals):
        return 0.0
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


def group_label(names, start: int, stop: int) -> str:
    """'hidden.3', 'hidden.3-5', 't=1-4' (or 'hidden.19-output' when the prefixes differ)."""
    if stop - start == 1:
        return str(names[start])
    first, last = str(names[start]), str(names[stop - 1])
    head, tail = first.rstrip("0123456789"), last.rstrip("0123456789")
    if head and head == tail and len(head) < len(last):
        return f"{first}-{last[len(tail):]}"
    return f"{first}-{last}"


def sparkline(values, width: int) -> str:
    """A unicode sparkline of the last ``width`` values, scaled to their own min..max."""
    vals = [num(v) for v in values][-width:] if width > 0 else []
    vals = [v for v in vals if math.isfinite(v)]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi - lo <= 1e-12 * max(abs(hi), 1e-30):
        return SPARK[0] * len(vals)
    top = len(SPARK) - 1
    return "".join(SPARK[int(round((v - lo) / (hi - lo) * top))] for v in vals)
