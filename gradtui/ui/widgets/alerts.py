"""AlertsPanel: the active alerts, their figures, the remedies with their keys, and the theory.

Alerts arrive in ``snapshot.alerts`` (worst first) from the session's diagnosis. Beside
them the mean-field theory's predicted first/last-layer gradient ratio at initialisation
(:func:`gradtui.theory.predict`) is shown next to the measured one, so the user can see
the textbook number and the live one side by side.
"""

from __future__ import annotations

import math
import re

from rich.cells import cell_len
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from gradtui.ui.keys import remedy_keys, try_keys
from gradtui.ui.widgets._format import fmt, num
from gradtui.ui.widgets._lines import set_titles

NOT_SPACE = re.compile(r"\S")
SEVERITY_SYMBOL = {"critical": "✗", "warning": "!", "info": "i"}


def measured_attenuation(snapshot) -> float:
    """||delta_first hidden|| / ||delta_last hidden|| of the latest step: the quantity the
    theory predicts for an MLP (its layers are the hidden layers, then the output layer)."""
    latest = snapshot.latest or {}
    deltas = [num(v) for v in latest.get("delta_norm") or ()]
    hidden = [i for i, layer in enumerate(snapshot.layers) if layer.kind != "output"]
    last = min(hidden[-1] if hidden else len(deltas) - 2, len(deltas) - 1)
    if last < 1 or not deltas[last] > 0:
        return math.nan
    return deltas[0] / deltas[last]


class AlertsPanel(VerticalScroll, can_focus=False):
    """Active alerts with remedies and keys; predicted vs measured attenuation.

    The whole text is always there: when it is taller than the panel, the panel scrolls
    (PgDn / PgUp, or the mouse wheel) and its bottom border says so.
    """

    COMPONENT_CLASSES = {"alerts-panel--critical", "alerts-panel--warning", "alerts-panel--info",
                         "alerts-panel--ok", "alerts-panel--key", "alerts-panel--note", "alerts-panel--try"}
    """Severity styles, the all-clear line, remedy keys, notes and the "◀ try" marks."""

    DEFAULT_CSS = """
    AlertsPanel {
        height: 1fr;
        min-height: 4;
        padding: 0 1;
        border: round $primary;
        border-title-color: $text;
        border-subtitle-color: $warning;
        scrollbar-size-vertical: 1;
    }
    AlertsPanel > Static { width: 1fr; height: auto; }
    AlertsPanel > .alerts-panel--critical { color: $error; text-style: bold; }
    AlertsPanel > .alerts-panel--warning { color: $warning; text-style: bold; }
    AlertsPanel > .alerts-panel--info { color: $primary; }
    AlertsPanel > .alerts-panel--ok { color: $success; }
    AlertsPanel > .alerts-panel--key { color: $accent; text-style: bold; }
    AlertsPanel > .alerts-panel--note { color: $text-muted; }
    AlertsPanel > .alerts-panel--try { color: $warning; text-style: bold; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = "alerts"
        self._alerts: tuple = ()
        self._keys_apply = True
        self._predicted = ""
        self._measured = math.nan
        self._status = "compiling"
        self._waiting = True
        self._message = ""
        self._prediction = None
        self._drawn = None
        self._shape = None
        self.content = Text()
        """What the panel shows (all of it; the panel scrolls when it is taller than the room)."""

    def compose(self):
        yield Static(id="alerts-body")

    def show(self, snapshot, message: str = "") -> None:
        """Take alerts, the attenuation figures and (when the header had to cut it) the
        session's ``message`` from a Snapshot."""
        self._alerts = tuple(snapshot.alerts or ())
        self._status = snapshot.status
        self._keys_apply = snapshot.source == "live"  # a record's remedies are shown without keys
        self._waiting = not snapshot.latest
        self._message = message
        # recurrent nets: the time view shows the gradient through time; no depth prediction to show
        recurrent = any(layer.kind == "recurrent" for layer in snapshot.layers)
        self._prediction = None if recurrent else snapshot.prediction
        self._measured = measured_attenuation(snapshot)
        set_titles(self, f"alerts ({len(self._alerts)})" if self._alerts else "alerts")
        key = (self._alerts, self._status, self._waiting, self._message, fmt(self._measured),
               tuple(sorted(self._prediction.items())) if self._prediction else None, self._keys_apply)
        if key != self._drawn:
            self._drawn = key
            self.content = self._text()
            if self.is_mounted:
                # a new layout of the whole screen only when the text may wrap to another height: the
                # measured figure changes every redraw, and a layout re-renders every panel
                shape, self._shape = self._shape, text_shape(self.content)
                self.query_one("#alerts-body", Static).update(self.content, layout=shape != self._shape)
                if shape != self._shape:
                    self.call_after_refresh(self._hint)

    def on_resize(self) -> None:
        self.call_after_refresh(self._hint)

    def _hint(self) -> None:
        """Say on the bottom border when part of the text is out of view."""
        set_titles(self, subtitle="↓ more: PgDn" if self.max_scroll_y > 0 else "")

    def _style(self, name: str):
        return self.get_component_rich_style(f"alerts-panel--{name}", partial=True)

    def _text(self) -> Text:
        out = Text()
        if self._message:
            out.append(self._message + "\n", self._style("note"))
        pred = self._prediction
        if pred is not None:
            if pred["applies"] and math.isfinite(pred["attenuation"]):
                out.append("first/last layer error: theory ", self._style("note"))
                out.append(fmt(pred["attenuation"]))
                out.append(" · measured ", self._style("note"))
                if math.isfinite(self._measured):
                    out.append(fmt(self._measured))
                elif self._waiting:
                    out.append("- (no step yet)")
                else:
                    out.append("- (the last hidden layer's error is 0 or not finite)")
            else:
                why = pred["reason"].split(":")[0].replace("the simple mean-field prediction does not apply ", "")
                out.append(f"theory: does not apply {why}", self._style("note"))
            out.append("\n")
        if not self._alerts:
            if self._status == "compiling" or self._waiting:
                out.append("… waiting for the first step", self._style("note"))
            else:
                out.append("✓ no problem detected", self._style("ok"))
        best = try_keys(self._alerts) if self._keys_apply else set()
        for i, alert in enumerate(self._alerts):
            if i:
                out.append("\n")
            sev = alert.severity if alert.severity in SEVERITY_SYMBOL else "info"
            out.append(f"{SEVERITY_SYMBOL[sev]} {alert.kind.replace('_', ' ')}: ", self._style(sev))
            what, why = split_headline(alert.message)
            out.append(what)
            keys = remedy_keys(alert.remedies) if self._keys_apply else ("",) * len(alert.remedies)
            for remedy, key in zip(alert.remedies, keys):
                out.append("\n ")
                if getattr(remedy, "code", ""):  # a model gradtui did not build: the code to write
                    if key:
                        out.append(f" {key} ", self._style("key"))
                    else:
                        out.append(" ·  ", self._style("note"))
                    out.append(short_label(remedy.label) + "\n    ", self._style("note"))
                    out.append(remedy.code)
                elif key:
                    out.append(f" {key} ", self._style("key"))
                    out.append(" " + short_label(remedy.label))
                    if key in best:
                        out.append(" ◀ try", self._style("try"))
                elif self._keys_apply:  # no key: a setting to change by hand (--set or a preset)
                    out.append("    " + short_label(remedy.label) + " (no key: --set)", self._style("note"))
                else:  # a record: what the run could change, nothing to press here
                    out.append("    " + short_label(remedy.label), self._style("note"))
            if why:
                out.append("\n" + why, self._style("note") if alert.remedies else None)
        return out


def text_shape(text: Text) -> tuple:
    """Where a text's words and spaces are, line by line: texts of the same shape wrap to the
    same lines at any width, so the panel's height cannot change between them."""
    return tuple((NOT_SPACE.sub("x", line), cell_len(line)) for line in text.plain.split("\n"))


_SENTENCE_END = re.compile(r"\.\s+(?=[A-Z])")
_FACT_END = re.compile(r":\s+(?=\S)")


def split_headline(message: str) -> tuple[str, str]:
    """An alert's opening fact (what is wrong) and the rest (why), so that the keys that fix
    it come right after the fact, above the fold on a small terminal.

    The fact ends at the first sentence's end or at the first ": " before it, since the
    diagnosis writes "fact: cause." ("hidden.0 gets 8e-32 of the gradient reaching hidden.19:
    each sigmoid passes ..."); the fact then ends with a full stop and the cause starts a
    sentence of its own.
    """
    end = _SENTENCE_END.search(message)
    colon = _FACT_END.search(message, 0, end.start() if end else len(message))
    if colon is not None:
        rest = message[colon.end():]
        return message[: colon.start()] + ".", rest[:1].upper() + rest[1:]
    if end is None:
        return message, ""
    return message[: end.start() + 1], message[end.end():]


def short_label(label: str) -> str:
    """'relu activation: derivative 1 wherever ...' -> 'relu activation'."""
    for sep in (": ", " (", "; "):
        if sep in label:
            label = label.split(sep, 1)[0]
    return label
