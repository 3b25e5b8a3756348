"""Feeding a record's lines, in file order, into a Monitor: what replay and follow share.

A :class:`RecordFeeder` turns each header, step and event line into what the live run
did to its monitor: steps into history and diagnosis, changes and restarts into markers,
the ◆ profile before the change, a new run, a new config; evaluations into the loss
plot. A record whose header says ``"diagnosed": true`` carries its alerts as events,
and those are shown as raised (with their messages); any other record is diagnosed from
its steps, with its layer table and the header's thresholds.
"""

from __future__ import annotations

import dataclasses

from gradtui.config import ConfigError
from gradtui.config.summary import change_text
from gradtui.diagnosis import Diagnoser, ModelFacts
from gradtui.diagnosis.alert import Alert
from gradtui.engine.record import Layer, StepRecord
from gradtui.monitor import Monitor
from gradtui.monitor.diagnoser import NoDiagnoser


class RecordedAlerts:
    """The diagnosis of a diagnosed record: the alerts its events raised and have not cleared."""

    def __init__(self):
        self._active: dict[str, Alert] = {}

    def observe(self, rec):
        return []

    def active(self):
        return tuple(sorted(self._active.values(), key=lambda a: (-a.rank, a.step)))

    def apply(self, what: str, alert: Alert) -> None:
        if what == "raised":
            self._active[alert.kind] = alert
        else:
            self._active.pop(alert.kind, None)

    def set_config(self, cfg) -> None:
        pass


def _config(raw, source: str):
    from gradtui.config.model import build_config

    if not isinstance(raw, dict):
        return None
    try:
        return build_config({k: v for k, v in raw.items() if k != "source"}, source=source)
    except ConfigError:
        return None


class RecordFeeder:
    """Feeds one record (one header and the lines after it) into ``monitor``.

    ``config`` is the gradtui config at the current line (None for a model gradtui did not
    build); ``run`` and ``step`` the run and step of the last step line; ``ended`` the
    ``end`` event's reason once it was read; ``nonfinite`` whether the last step was."""

    def __init__(self, header: dict, monitor: Monitor, source: str = "the record"):
        self.header = header
        self.monitor = monitor
        self.source = source
        self.diagnosed = bool(header.get("diagnosed", header.get("format") == 1 and "config" in header))
        self.config = _config(header.get("config"), source)
        self.layers = tuple(Layer.from_dict(e) for e in header.get("layers", header.get("layer_names", [])))
        self.run = 0
        self.step = 0
        self.steps_fed = 0
        self.ended = ""
        self.nonfinite = False
        self.problem = ""  # a line that could not be used, for the message
        opt = header.get("optimizer") if isinstance(header.get("optimizer"), dict) else {}
        # a gradtui.torch writer's live settings (what its control file changes), as the record says
        self.remote = {"train.lr": opt.get("lr"), "train.clip": "none", "train.on_nonfinite": header.get("on_nonfinite"),
                       "train.paused": False} if header.get("control") else {}
        monitor.new_run(self.layers, self._diagnosis())

    def _diagnosis(self):
        if self.diagnosed:
            return RecordedAlerts()
        names = [layer.name for layer in self.layers]
        try:
            facts = ModelFacts.from_config(self.config) if self.config is not None else ModelFacts.from_layers(
                self.layers, self.header.get("alerts"), self.source, self.header)
            return Diagnoser(facts, names)
        except (ConfigError, ValueError) as err:
            self.problem = f"no diagnosis: {err}"
            return NoDiagnoser()

    def feed(self, kind: str, obj: dict) -> None:
        """One line after the header: ("step" | "event", the line as a dict)."""
        if kind == "step":
            self._step(obj)
        elif kind == "event":
            self._event(obj)

    def _step(self, obj: dict) -> None:
        try:
            rec = StepRecord.from_dict(obj, len(self.layers))
        except ValueError as err:
            self.problem = f"{self.source}: {err} (skipped)"
            return
        self.run = int(obj.get("run", self.run))
        self.step = rec.step
        self.steps_fed += 1
        self.nonfinite = rec.nonfinite
        self.monitor.observe(rec, self.run)

    def _event(self, ev: dict) -> None:
        m = self.monitor
        what, step, run = ev.get("event"), int(ev.get("step", 0)), int(ev.get("run", self.run))
        m.journal.keep(ev)
        if what in ("alert_raised", "alert_cleared") and self.diagnosed and isinstance(m.diagnosis, RecordedAlerts):
            try:
                alert = Alert.from_dict(ev["alert"])
            except (KeyError, TypeError, ValueError):
                return
            m.diagnosis.apply(what[len("alert_"):], alert)
            if what == "alert_raised":
                m.journal.note_raised(step, alert)
        elif what == "change":
            self._change(ev, step, run)
        elif what == "restart":
            text = f"restart (seed {ev.get('seed', '?')})"
            m.keep_before(text, self.run)
            self._fresh_run(ev, run, text)
        elif what == "eval" and isinstance(ev.get("loss"), (int, float)):
            m.add_eval(step, {k: ev[k] for k in ("loss", "accuracy") if isinstance(ev.get(k), (int, float))})
        elif what == "prediction":
            m.note_prediction(ev)
        elif what == "rollback":
            m.history.add_marker(step, f"weights back to step {ev.get('to_step', '?')}")
        elif what == "end":
            self.ended = str(ev.get("reason", "ended"))

    def _change(self, ev: dict, step: int, run: int) -> None:
        m = self.monitor
        for key, value in (ev.get("overrides") or {}).items():
            if key in self.remote:
                self.remote[key] = value
        new = _config(ev.get("config"), self.source)
        changed = ev.get("changed") or list((ev.get("overrides") or {}).keys())
        overrides = ev.get("overrides") or {}
        text = change_text((k, new.get(k) if new is not None else overrides.get(k)) for k in changed)  # as the live run words it
        m.keep_before(text, self.run)
        if ev.get("mode") == "restart":
            self.config = new
            if isinstance(ev.get("layers"), list):
                self.layers = tuple(Layer.from_dict(e) for e in ev["layers"])
            self._fresh_run(ev, run, f"{text} (fresh weights)")
            return
        self.config = new if new is not None else self.config
        if self.config is not None and not isinstance(m.diagnosis, NoDiagnoser):
            m.diagnosis.set_config(self.config)
        elif isinstance(m.diagnosis, Diagnoser) and "train.lr" in (ev.get("overrides") or {}):
            lr = ev["overrides"]["train.lr"]  # a live change of a model gradtui did not build
            if isinstance(lr, (int, float)):
                m.diagnosis.set_config(dataclasses.replace(m.diagnosis.facts, lr=float(lr)))
        m.history.add_marker(step, text)

    def _fresh_run(self, ev: dict, run: int, marker: str) -> None:
        if "config" in ev and ev.get("event") == "restart":
            self.config = _config(ev.get("config"), self.source) or self.config
        self.run = run
        before = self.monitor.before
        self.monitor.new_run(self.layers, self._diagnosis())
        self.monitor.before = before
        self.monitor.history.add_marker(0, marker)
