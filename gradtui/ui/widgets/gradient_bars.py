"""GradientBars: one row per layer (input at the top), bar length on a fixed log10 scale.

The centrepiece. Each row shows the layer's name, a health symbol (↓ vanishing,
✓ healthy, ↑ exploding, ✗ not finite), a bar whose length is log10 of the norm on the
fixed scale 1e-12 .. 1e+3 (so bars compare over time and between runs), and the value.
After a mitigation the profile from just before it stays as a ◆ marker on each row.
With more layers than rows, neighbouring layers share a row (geometric mean) and a
line says so; nothing is cut silently. Row marks use the vanishing alert's own test
(:mod:`gradtui.diagnosis.health`); when the marks and the alerts still differ (the
alert waits rise_steps steps, or reads the weights' updates), a note says why. At a
non-finite pause the bars keep the last finite step's profile, marked as exploding.

Data comes down through :meth:`show` as plain tuples (never NumPy arrays).
"""

from __future__ import annotations

import math
import textwrap

from rich.text import Text

from gradtui.diagnosis.health import marks, vanishing_threshold
from gradtui.ui.widgets._format import (
    HEALTH_SYMBOL,
    LOG_MAX,
    LOG_MIN,
    bar_fraction,
    fit,
    fmt,
    geomean,
    group_label,
    num,
    row_spans,
)
from gradtui.ui.widgets._lines import LineWidget, set_titles

BLOCKS = " ▏▎▍▌▋▊▉█"
MODES = {
    "grad": ("grad_norm", "weight gradient ||dL/dW|| per layer"),
    "delta": ("delta_norm", "back-propagated error ||dL/dz|| per layer"),
    "time": ("time_delta_norm", "error through time ||dL/dh_t|| per time step"),
}


TIME_HINT = (
    "Each bar: how much error reaches time step t (log scale; t=1 on top, the loss is read at the "
    "last step). Red ↓ rows are steps the network cannot learn from: their error vanished on the "
    "way back through time. t switches to layers."
)
HINT = (
    "Each bar: how much gradient reaches that layer (log scale; input layer on top, output at the "
    "bottom). Red ↓ rows get almost none, so they barely learn. Press a key the alerts panel suggests "
    "and compare: ◆ keeps the profile from before the change."
)


class GradientBars(LineWidget, can_focus=False):
    """Per-layer gradient norms as log-scale bars, coloured and marked by health."""

    COMPONENT_CLASSES = {
        "gradient-bars--vanishing",
        "gradient-bars--healthy",
        "gradient-bars--exploding",
        "gradient-bars--before",
        "gradient-bars--axis",
        "gradient-bars--label",
        "gradient-bars--note",
    }
    """Styles of the bar by health, the before-marker, the scale axis, row labels and notes."""

    DEFAULT_CSS = """
    GradientBars {
        width: 1fr;
        height: 1fr;
        min-height: 6;
        padding: 0 1;
        border: round $primary;
        border-title-color: $text;
        border-title-style: bold;
        text-wrap: nowrap;
        text-overflow: clip;
    }
    GradientBars > .gradient-bars--vanishing { color: $error; }
    GradientBars > .gradient-bars--healthy { color: $success; }
    GradientBars > .gradient-bars--exploding { color: $error; text-style: bold; }
    GradientBars > .gradient-bars--before { color: $warning; text-style: bold; }
    GradientBars > .gradient-bars--axis { color: $text-muted; }
    GradientBars > .gradient-bars--label { color: $text; }
    GradientBars > .gradient-bars--note { color: $text-muted; text-style: italic; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = "gradient per layer"
        self._names: tuple = ()
        self._values: tuple = ()
        self._marks: tuple = ()
        self._before: tuple | None = None
        self._before_label: tuple = ("", 0)
        self._mode = "grad"
        self._waiting = "compiling"
        self._notes: tuple = ()  # (text, style name) lines under the legend
        self._unit = "layer"

    @property
    def footer_lines(self) -> int:
        """Lines under the legend (◆ legend and notes): WeightPanel leaves as many, so rows line up."""
        return len(self._note_lines(self.content_region.width or 60)) + (1 if self._before else 0)

    def _note_lines(self, width: int) -> list[tuple[str, str]]:
        """The notes wrapped to ``width`` (wrapped, never cut: they carry step numbers)."""
        return [(line, style) for text, style in self._notes for line in textwrap.wrap(text, max(10, width))]

    # -- data in -------------------------------------------------------------------------
    def show(self, snapshot, mode: str = "grad") -> None:
        """Take what the bars need from a Snapshot (plain values only) and redraw."""
        self._mode = mode
        field, title = MODES[mode]
        latest = snapshot.latest or {}
        notes = []
        if latest.get("nonfinite"):  # the pause's step is NaN/Inf: show the last finite profile
            finite = snapshot.latest_finite or {}
            notes.append((f"✗ step {latest.get('step', 0):,} went non-finite (exploding); the bars show step "
                          f"{finite.get('step', 0):,}, the last finite one", "exploding"))
            title = f"exploding · {title}, last finite step"
            latest = finite
        values = latest.get(field) or ()
        self._waiting = "" if latest else {"compiling": "compiling", "paused": "paused"}.get(snapshot.status, "first step")
        if mode == "time":
            self._names = tuple(f"t={i + 1}" for i in range(len(values)))
            self._unit = "time step"
        else:
            self._names = tuple(snapshot.layer_names)
            self._unit = "layer"
        self._values = tuple(num(v) for v in values)
        before = snapshot.before or None
        if before and before.get(field) and len(before.get(field)) == len(self._values):
            self._before = tuple(num(v) for v in before[field])
            self._before_label = (str(before.get("change", "")), int(before.get("step", 0)))
        else:
            self._before = None
        cfg = snapshot.config
        self._marks = ()
        if cfg is not None and self._values:
            a = cfg.alerts
            if mode == "time":
                self._marks = tuple(marks(self._values, a.time_ratio, math.inf, reference=-1))
            else:
                self._marks = tuple(marks(self._values, vanishing_threshold(a, snapshot.alerts), a.exploding_norm))
                if not notes:
                    notes.extend(self._disagreement(snapshot, latest))
        self._notes = tuple(notes)
        set_titles(self, title)
        self.redraw_lines()  # a frame repaints only the rows that changed

    def _disagreement(self, snapshot, latest: dict) -> list[tuple[str, str]]:
        """A note when the row marks and the vanishing alert say different things, saying why.

        The alert rises when the first hidden layer is ↓ in both ||dL/dW|| and ||dL/dz|| for
        rise_steps steps in a row, and clears after clear_steps steps without that."""
        kinds = {alert.kind: alert for alert in snapshot.alerts}
        a = snapshot.config.alerts
        first = self._names[0] if self._names else "the first layer"
        down = "vanishing" in self._marks[:-1]
        alert = kinds.get("vanishing")
        if down and alert is None:
            if "dead" in kinds and not any(v > 0 for v in self._values[:-1] if v == v):
                return [("no gradient at all: the dead units pass none (see the dead alert)", "note")]
            ratio = vanishing_threshold(a, snapshot.alerts)
            both = [marks([num(v) for v in latest.get(f) or ()], ratio, a.exploding_norm)[:1] for f in ("grad_norm", "delta_norm")]
            if both == [["vanishing"], ["vanishing"]]:
                return [(f"no vanishing alert: it rises only after {first} is ↓ for {a.rise_steps} steps in a row", "note")]
            if self._marks[0] == "vanishing":
                return [(f"no vanishing alert: it needs {first} ↓ in both ||dL/dW|| and ||dL/dz|| (d switches)", "note")]
            return [(f"no vanishing alert: it watches {first}, which is ✓", "note")]
        if alert is not None and not down:
            if dict(alert.extra).get("sign") in ("update", "weights"):
                return [("the vanishing alert reads the weights (update ratio, size), not these bars", "note")]
            return [(f"no ↓ row now: the vanishing alert clears after {a.clear_steps} steps without {first} ↓", "note")]
        return []

    # -- drawing -------------------------------------------------------------------------
    def _style(self, name: str):
        return self.component_style(f"gradient-bars--{name}")

    def render(self) -> Text:
        width = max(10, self.content_region.width or self.size.width)
        height = max(3, self.content_region.height or self.size.height)
        if not self._values:
            if self._waiting == "compiling":
                note = ("Numba is translating the training step to machine code. "
                        "Later runs load it from the cache and start at once.")
                return Text.assemble(
                    ("… compiling kernels, first run only\n", "bold"),
                    (textwrap.fill(note, width), self._style("note")),
                )
            if self._waiting == "paused":
                return Text("‖ paused before the first step of this run: space starts it, s takes one step",
                            self._style("note"))
            if self._waiting:
                return Text("… waiting for the first step of this run", self._style("note"))
            if self._mode == "time":
                return Text("no time profile: t shows time steps for recurrent models only", self._style("note"))
            return Text("no values in this step", self._style("note"))

        n = len(self._values)
        footer = len(self._note_lines(width)) + (1 if self._before else 0)
        spans = row_spans(n, height, footer)
        grouped = len(spans) < n
        labels = [group_label(self._names, a, b) for a, b in spans]
        values = [geomean(self._values[a:b]) for a, b in spans]
        states = [_worst(self._marks[a:b]) for a, b in spans]
        before = [geomean(self._before[a:b]) for a, b in spans] if self._before else None
        label_w = min(max(len(s) for s in labels), max(8, width * 2 // 5))  # long module paths leave room for the bars
        labels = [s if len(s) <= label_w else "…" + s[len(s) - label_w + 1:] for s in labels]  # keep the specific end
        value_w = 7  # 3.2e-09
        bar_w = max(1, width - label_w - value_w - 4)  # label, mark, bar, value and the three spaces between

        out = Text(no_wrap=True, overflow="crop")
        out.append(self._axis(label_w, bar_w))
        for i, (label, value, state) in enumerate(zip(labels, values, states)):
            style_name = "healthy" if state == "healthy" else ("exploding" if state in ("exploding", "nonfinite") else "vanishing")
            style = self._style(style_name)
            out.append("\n")
            out.append(label.rjust(label_w), self._style("label"))
            out.append(" ")
            out.append(HEALTH_SYMBOL[state], style)
            out.append(" ")
            self._bar(out, value, before[i] if before else None, bar_w, style)
            out.append(" ")
            out.append(fmt(value).rjust(value_w), style)
        out.append("\n")
        gap = "  " if width >= 38 else " "
        legend = Text.assemble(
            ("↓", self._style("vanishing")), " vanishing" + gap,
            ("✓", self._style("healthy")), " healthy" + gap,
            ("↑", self._style("exploding")), " exploding",
        )
        if any(not math.isfinite(v) for v in values):
            legend.append("  ")
            legend.append("✗", self._style("exploding"))
            legend.append(" NaN/Inf")
        if legend.cell_len > width:
            legend.truncate(width - 1)
            legend.append("…")
        out.append(legend)
        if self._before:
            change, step = self._before_label
            tail = f" (step {step:,})"  # the number is never cut: the change's text gives way
            out.append("\n")
            out.append("◆", self._style("before"))
            out.append(" " + fit(f"before {change}", max(1, width - 2 - len(tail))) + tail, self._style("note"))
        for text, style in self._note_lines(width):
            out.append("\n")
            out.append(text, self._style(style))
        spare = height - 2 - footer - len(spans) - (1 if grouped else 0)
        hint = textwrap.wrap(TIME_HINT if self._mode == "time" else HINT, width)
        if not grouped and spare >= len(hint) + 1:
            out.append("\n")
            for line in hint:
                out.append("\n" + line, self._style("note"))
        if grouped:
            note = f"{n} {self._unit}s in {len(spans)} rows; a range shows the geometric mean"
            if len(note) > width:
                note = fit(f"{n} {self._unit}s in {len(spans)} rows (geom. mean)", width)
            out.append("\n")
            out.append(note, self._style("note"))
        return out

    def _axis(self, label_w: int, bar_w: int) -> Text:
        """'1e-12    1e-9    1e-6 ...' ticks over the bar column."""
        line = [" "] * bar_w
        decades = int(LOG_MAX - LOG_MIN)
        step = 3 if bar_w >= 5 * decades / 3 else 6
        for d in range(int(LOG_MIN), int(LOG_MAX) + 1, step):
            pos = int(round((d - LOG_MIN) / (LOG_MAX - LOG_MIN) * (bar_w - 1)))
            tick = f"1e{d:+d}" if d else "1"
            start = min(pos, bar_w - len(tick))
            if all(c == " " for c in line[max(0, start - 1): start + len(tick)]):
                line[start: start + len(tick)] = tick
        return Text(" " * (label_w + 3) + "".join(line), self._style("axis"))

    def _bar(self, out: Text, value: float, before: float | None, bar_w: int, style) -> None:
        cells = bar_fraction(value) * bar_w
        full = int(cells)
        part = int((cells - full) * 8)
        chars = ["█"] * full
        if full < bar_w:
            chars.append(BLOCKS[part] if part else " ")
            chars.extend(" " * (bar_w - full - 1))
        marker = None
        if before is not None and (math.isfinite(before) or math.isinf(before)):
            marker = min(bar_w - 1, int(bar_fraction(before) * bar_w))
        text = "".join(chars[:bar_w])
        if marker is None:
            out.append(text, style)
        else:
            out.append(text[:marker], style)
            out.append("◆", self._style("before"))
            out.append(text[marker + 1:], style)


def _worst(states) -> str:
    """The worst mark of a group of rows (a range shows a problem if one layer has it)."""
    for state in ("nonfinite", "exploding", "vanishing"):
        if state in states:
            return state
    return "healthy" if states else "none"
