"""The monitor: what every viewer sees of a stream of steps, whoever produces it.

A :class:`Monitor` is fed StepRecords and events by a source (the live trainer, a
finished record, a followed record) and keeps the bounded history, the diagnosis, the
journal (events, alerts raised, the record being written) and the latest values; its
:meth:`publish` builds the immutable :class:`~gradtui.monitor.snapshot.Snapshot` readers
poll. The source adds what only it knows: its status, its message, its config.
"""

from __future__ import annotations

import math
import traceback

from gradtui.engine.record import OPTIONAL, PER_LAYER
from gradtui.monitor.diagnoser import NoDiagnoser
from gradtui.monitor.history import History
from gradtui.monitor.journal import Journal
from gradtui.monitor.snapshot import Snapshot


def step_values(rec) -> dict:
    """One StepRecord as plain numbers: floats (NaN and infinities as floats), tuples per layer."""
    out = {"step": int(rec.step), "loss": float(rec.loss), "grad_norm_total": float(rec.grad_norm_total),
           "clipped": bool(rec.clipped), "nonfinite": bool(rec.nonfinite), "nonfinite_layer": rec.nonfinite_layer}
    for name in PER_LAYER:
        out[name] = tuple(float(v) for v in getattr(rec, name))
    for name in OPTIONAL:
        value = getattr(rec, name)
        out[name] = None if value is None else tuple(float(v) for v in value)
    return out


def layer_profile(rec, names, change: str, run: int) -> dict:
    """The per-layer profile of one StepRecord, for ``Snapshot.before`` (the ◆ markers)."""
    out = step_values(rec)
    out.update({"run": run, "change": change, "layer_names": tuple(names)})
    return out


class Monitor:
    """History, diagnosis, journal and the latest values of one stream; see the module docstring.

    Only the source's thread feeds it; readers see the Snapshots it publishes.
    ``notice`` is set when the diagnosis failed (it is then off until :meth:`new_run`).
    """

    def __init__(self, history_capacity: int = 2000, journal: Journal | None = None):
        self.history = History(history_capacity)
        self.journal = journal if journal is not None else Journal()
        self.diagnosis = NoDiagnoser()
        self.layers: tuple = ()  # the layer table (gradtui.engine.record.Layer)
        self.layer_names: tuple = ()
        self.last = None  # latest StepRecord
        self.last_finite = None
        self.before: dict | None = None
        self.evaluation: dict = {}
        self.prediction: dict | None = None
        self.version = 0
        self.notice = ""
        self.error_traceback = ""
        self._latest_for = None
        self._latest: dict = {}
        self._finite: dict = {}

    # -- feeding --------------------------------------------------------------------------------
    def new_run(self, layers, diagnosis) -> None:
        """A fresh run of a model with this layer table: forget the history and the latest
        values; diagnose with ``diagnosis``."""
        self.layers = tuple(layers)
        self.layer_names = tuple(layer.name for layer in self.layers)
        self.diagnosis = diagnosis
        self.history.clear()
        self.last = self.last_finite = None
        self.evaluation = {}
        self.prediction = None

    def observe(self, rec, run: int) -> list:
        """Feed one step: history (finite steps), diagnosis, alert events; returns the
        diagnosis's ("raised" | "cleared", Alert) pairs."""
        self.last = rec
        if rec.nonfinite:
            self.history.add_marker(rec.step, f"non-finite in {rec.nonfinite_layer or '?'}")
        else:
            self.last_finite = rec
            self.history.add_step(rec)
        try:
            events = self.diagnosis.observe(rec)
        except Exception as err:  # noqa: BLE001 - a diagnosis bug must not stop the stream
            self.error_traceback = traceback.format_exc()
            self.diagnosis = NoDiagnoser()
            self.notice = f"diagnosis failed ({type(err).__name__}: {err}); training goes on without alerts"
            return []
        if events:
            self.journal.alerts(events, rec.step, run)
        return events

    def keep_before(self, change: str, run: int) -> None:
        """Keep the latest finite profile as the one from before a change."""
        rec = self.last_finite
        if rec is not None:
            self.before = layer_profile(rec, self.layer_names, change, run)

    def note_prediction(self, event: dict) -> None:
        """Keep mean-field theory's prediction from a "prediction" event (as written or as read
        back: a non-finite attenuation may be the string "nan" or "inf")."""
        try:
            attenuation = float(event.get("attenuation", math.nan))
        except (TypeError, ValueError):
            attenuation = math.nan
        self.prediction = {"applies": bool(event.get("applies")), "attenuation": attenuation,
                           "reason": str(event.get("reason") or ""), "summary": str(event.get("summary") or "")}

    def add_eval(self, step: int, result: dict) -> None:
        self.evaluation = dict(result)
        self.history.add_eval(step, result)

    # -- publishing -----------------------------------------------------------------------------
    def latest(self) -> tuple[dict, dict]:
        """(latest step, latest finite step) as plain numbers, converted once per step."""
        rec = self.last
        if rec is None:
            return {}, {}
        if self._latest_for is not rec:
            self._latest_for = rec
            self._latest = step_values(rec)
            finite = self.last_finite
            self._finite = self._latest if not rec.nonfinite else ({} if finite is None else step_values(finite))
        return self._latest, self._finite

    def publish(self, **source_state) -> Snapshot:
        """A new Snapshot of the monitor's state plus the source's (status, step, message, config ...)."""
        latest, finite = self.latest()
        self.version += 1
        journal = self.journal
        return Snapshot(
            layers=self.layers,
            layer_names=self.layer_names,
            latest=latest,
            latest_finite=finite,
            history=self.history.view(),
            before=self.before,
            alerts=tuple(self.diagnosis.active()),
            evaluation=dict(self.evaluation),
            version=self.version,
            record_path=journal.path,
            record_error=journal.record_error,
            raised=journal.raised_tuple,
            prediction=self.prediction,
            **source_state,
        )

