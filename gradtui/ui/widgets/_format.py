"""Plain helpers shared by the widgets: number formatting, health, row grouping, summaries.

No Textual here, so the rules (what counts as vanishing, how rows are grouped) are
testable on their own and the same in every panel.
"""

from __future__ import annotations

import math

LOG_MIN, LOG_MAX = -12.0, 3.0  # the bars' fixed log10 scale: 1e-12 .. 1e+3

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


def row_spans(n: int, height: int, footer: int = 0) -> list[tuple[int, int]]:
    """The rows of a per-layer panel ``height`` lines high: a head line (the bars' axis, the
    weights' column titles), the rows, a legend line and ``footer`` lines of notes; one line
    more goes to the aggregation note when layers share rows; the last layer keeps its own row. GradientBars and WeightPanel
    both lay out with it, given the same height and footer, so their rows line up."""
    rows = height - 2 - footer
    if n <= rows:
        return groups(n, rows)
    rows = max(2, rows - 1)
    # the output layer keeps a row of its own (short labels, and it is the layer next to the loss)
    return groups(n - 1, rows - 1) + [(n - 1, n)]


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells with a visible '…' (never silently)."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def fit_parts(parts, width: int, sep: str = " · ") -> str:
    """As many whole ``parts`` as fit in ``width``, joined by ``sep``, then ' …' when some are left
    out: a part (which may hold a number) is dropped whole, never cut."""
    out = ""
    for i, part in enumerate(parts):
        candidate = part if not out else out + sep + part
        more = i < len(parts) - 1
        if len(candidate) + (2 if more else 0) > width:
            return (out + " …") if out else fit(part, width)
        out = candidate
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


def shared_scale(rows) -> tuple[float, float]:
    """The range (lo, hi) of every row's value relative to its first, over all rows; always
    containing 1 and at least ±1% wide, so stillness draws as a flat line in the middle."""
    ratios = [v / r[0] for r in rows if r and num(r[0]) > 0 for v in r if math.isfinite(num(v))]
    lo, hi = min(ratios + [1.0]), max(ratios + [1.0])
    return min(lo, 0.99), max(hi, 1.01)


def relative_sparkline(values, lo: float, hi: float) -> str:
    """A sparkline of values / values[0] on the shared scale lo..hi (logarithmic)."""
    vals = [num(v) for v in values]
    if not vals or not vals[0] > 0:
        return ""
    span = math.log(hi) - math.log(lo)
    top = len(SPARK) - 1
    out = []
    for v in vals:
        if not (math.isfinite(v) and v > 0):
            out.append(" ")
            continue
        x = (math.log(v / vals[0]) - math.log(lo)) / span
        out.append(SPARK[int(round(min(1.0, max(0.0, x)) * top))])
    return "".join(out)
