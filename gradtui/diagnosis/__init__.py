"""Diagnosis: alerts for vanishing, exploding, non-finite, dead and saturated layers that name
the remedy, with the mean-field theory's prediction beside the measurement.

    >>> d = Diagnoser(cfg, exp.layer_names)
    >>> events = d.observe(exp.step())   # [("raised" | "cleared", Alert), ...] this step
    >>> d.active()                       # (Alert, ...) worst first

The rules (rules.py) are pure functions of the current StepRecord and an O(1) rolling summary;
hysteresis.py keeps alerts from flickering; remedies.py says which fixes apply to the config.
Thresholds and windows come from the config's [alerts] table; docs/alerts.md explains them.
"""

from __future__ import annotations

import dataclasses
import math

from gradtui.diagnosis import rules
from gradtui.diagnosis.alert import KINDS, SEVERITIES, Alert, Remedy
from gradtui.diagnosis.facts import ModelFacts, facts_of
from gradtui.diagnosis.hysteresis import Hysteresis
from gradtui.diagnosis.remedies import remedies_for
from gradtui.diagnosis.rules import Finding, Trends

__all__ = ["Alert", "Diagnoser", "Finding", "Hysteresis", "KINDS", "ModelFacts", "Remedy", "SEVERITIES", "Trends", "remedies_for", "rules"]

_ORDER = {k: i for i, k in enumerate(KINDS)}


def _predicted_attenuation(cfg) -> tuple[float | None, object]:
    """The theory's predicted first/last hidden-layer gradient ratio at init, when it applies."""
    try:
        from gradtui.theory import predict

        p = predict(cfg)
    except Exception:  # theory is optional for the diagnosis; never let it break training
        return None, None
    if getattr(p, "applies", False) and math.isfinite(getattr(p, "attenuation", math.nan)):
        return float(p.attenuation), p
    return None, p


class Diagnoser:
    """Turns the stream of StepRecords into alerts that rise and clear with hysteresis.

    ``observe`` is called for every step; it costs a few microseconds (scalar rules over the
    record and an O(1) rolling summary). Messages are written only when an alert rises or
    when ``active()`` is asked for an alert whose figures changed since the last call.
    """

    def __init__(self, cfg, layer_names):
        """``cfg`` a gradtui Config, or the ModelFacts of a model known only from its record."""
        self.names = tuple(layer_names)
        a = facts_of(cfg).alerts
        self._hyst = Hysteresis(a.rise_steps, a.clear_steps)
        self._latest: dict[str, tuple] = {}  # kind -> (Finding, record) last time the condition held
        self._alerts: dict[str, Alert] = {}  # kind -> Alert, while active
        self._built: dict[str, int] = {}  # kind -> id of the Finding the Alert was written from
        self.set_config(cfg)

    # -- configuration -------------------------------------------------------------------
    def set_config(self, cfg) -> None:
        """Use a new config (after a remedy applied mid-run): new thresholds and remedies; the
        trend window starts afresh; active alerts stay until their condition has gone for
        clear_steps steps, with their remedies recomputed for the new config."""
        facts = facts_of(cfg)
        self.facts = facts
        self.cfg = facts.config
        a = facts.alerts
        self._a = a
        self._hyst.rise_steps, self._hyst.clear_steps = a.rise_steps, a.clear_steps
        self._trends = Trends(a.window)
        self._recurrent = facts.recurrent
        self._remedies = {kind: remedies_for(kind, self.cfg) if self.cfg is not None else () for kind in KINDS}
        self.predicted, self.prediction = _predicted_attenuation(self.cfg) if self.cfg is not None else (None, None)
        self._built.clear()  # rebuild active alerts (remedies may have changed)

    # -- the per-step path ---------------------------------------------------------------
    def observe(self, rec) -> list[tuple[str, Alert]]:
        """Update with one step's record; return the alerts raised or cleared by it."""
        events: list[tuple[str, Alert]] = []
        hyst = self._hyst
        if rec.nonfinite:
            f = rules.nonfinite(rec)
            self._latest["nonfinite"] = (f, rec)
            if hyst.update("nonfinite", True, rise_steps=1) == "raised":
                events.append(("raised", self._rise("nonfinite", rec.step)))
            # the other statistics of a non-finite step are not meaningful: freeze their state
            return events
        if hyst.update("nonfinite", False) == "cleared":
            events.append(("cleared", self._clear("nonfinite")))
        a, names, tr = self._a, self.names, self._trends
        tr.push(rec.loss, rec.grad_norm_total, rec.weight_norm)
        found = (
            ("exploding", rules.exploding(rec, tr, a), a.exploding_rise_steps),
            ("vanishing", rules.vanishing(rec, tr, a, names), None),
            ("vanishing_time", rules.vanishing_time(rec, a) if self._recurrent else None, None),
            ("collapse", rules.collapse(rec, a), None),
            ("dead", rules.dead(rec, a, names), None),
            ("saturation", rules.saturation(rec, a, names), None),
        )
        for kind, f, rise in found:
            if f is not None:
                self._latest[kind] = (f, rec)
            ev = hyst.update(kind, f is not None, rise)
            if ev == "raised":
                events.append(("raised", self._rise(kind, rec.step)))
            elif ev == "cleared":
                events.append(("cleared", self._clear(kind)))
        return events

    def active(self) -> tuple[Alert, ...]:
        """The active alerts, worst first, with their latest figures."""
        for kind in self._alerts:
            f, _ = self._latest[kind]
            if self._built.get(kind) != id(f):
                self._alerts[kind] = self._build(kind, self._alerts[kind].step)
        return tuple(sorted(self._alerts.values(), key=lambda al: (-al.rank, _ORDER.get(al.kind, 99), al.step)))
        self._trends = Trends(self._a.window)

    # -- building alerts -----------------------------------------------------------------
    def _build(self, kind: str, step: int) -> Alert:
        f, rec = self._latest[kind]
        predicted = self.predicted if kind == "vanishing" and f.sign == "ratio" else None
        self._built[kind] = id(f)
        return Alert(
            kind=kind,
            severity=f.severity,
            message=rules.message(self._named_as_code(f), self.facts, rec, predicted),
            layers=tuple(f.layers),
            remedies=self._remedies.get(kind, ()) or self._code_remedies(kind, f),
            step=int(step),
            figure=None if f.figure is None or math.isnan(f.figure) else float(f.figure),
            predicted=predicted,
            extra=tuple((k, v) for k, v in f.info.items() if isinstance(v, (int, float, str, bool))) + (("sign", f.sign),),
        )

    def _named_as_code(self, f):
        """``f`` with a PyTorch model's layers named as the Python that reaches them
        ("encoder.layers.3.linear1" -> model.encoder.layers[3].linear1), as its remedies name them."""
        if self.cfg is not None or self.facts.framework != "pytorch" or not f.layers:
            return f
        from gradtui.diagnosis.pytorch_remedies import access

        return dataclasses.replace(f, layers=tuple(access(name) for name in f.layers))

    def _code_remedies(self, kind: str, f) -> tuple:
        """A PyTorch model's remedies, as code for the layers the finding names."""
        if self.cfg is not None or self.facts.framework != "pytorch":
            return ()
        from gradtui.diagnosis.pytorch_remedies import code_remedies

        return code_remedies(kind, self.facts, tuple(f.layers))

    def _rise(self, kind: str, step: int) -> Alert:
        alert = self._build(kind, step)
        self._alerts[kind] = alert
        return alert

    def _clear(self, kind: str) -> Alert:
        self._built.pop(kind, None)
        return self._alerts.pop(kind)
