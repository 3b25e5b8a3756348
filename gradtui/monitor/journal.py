"""The journal of a run: what happened, kept in memory and written to the record.

A :class:`Journal` owns the session's JSON Lines :class:`~gradtui.record.RecordWriter`
(if any), the bounded list of events (changes, restarts, evaluations, alerts,
non-finite steps), the alerts raised so far, and the clock their times are measured
on. It also exports the run so far as a record of its own. A failed write never stops
training: the journal keeps the error in ``record_error``, stops recording and tells
the session through ``on_error``.
"""

from __future__ import annotations

import collections
import threading
import time
from datetime import datetime
from pathlib import Path

from gradtui.record import RecordError, RecordExists, RecordWriter, plain

MAX_EVENTS = 10_000
MAX_RAISED = 500


class Journal:
    """Events, raised alerts and the JSON Lines record of one session.

    ``record_path`` opens the record at once (RecordError if it cannot be written);
    ``on_error()`` is called, without arguments, after a step or event line failed.
    Only the worker writes; :meth:`events` may be called from any thread.
    """

    def __init__(self, record_path=None, force: bool = False, on_error=None):
        self.writer = RecordWriter(record_path, force=force) if record_path is not None else None
        self.record_error = ""
        self.raised_tuple: tuple = ()  # (step, Alert) of every alert raised, oldest first (bounded)
        self.t0 = time.perf_counter()
        self._on_error = on_error
        self._events: list = []
        self._events_lock = threading.Lock()
        self._raised: collections.deque = collections.deque(maxlen=MAX_RAISED)

    def __getstate__(self) -> dict:
        """A copy for a replay's keyframe: the events and alerts, without the lock; a journal
        that writes a record is not copied."""
        if self.writer is not None:
            raise TypeError("a journal writing a record cannot be copied")
        state = dict(self.__dict__)
        del state["_events_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._events_lock = threading.Lock()

    @property
    def path(self) -> str:
        """The record being written, or "" when there is none."""
        return str(self.writer.path) if self.writer else ""

    def elapsed(self) -> float:
        """Seconds since the session was created (the ``time`` of every line)."""
        return time.perf_counter() - self.t0

    def events(self) -> list:
        """A copy of the event list (any thread)."""
        with self._events_lock:
            return list(self._events)

    # -- the worker -----------------------------------------------------------------------------
    def header(self, cfg, layer_names, extra: dict) -> bool:
        """Write the record's header; False (and ``record_error`` set) when that failed."""
        if self.writer is None:
            return True
        try:
            self.writer.header(cfg, layer_names, extra)
        except RecordError as err:
            self.record_error = str(err)
            return False
        return True

    def event(self, event: str, step: int, run: int, **fields) -> None:
        """Keep one event (the list is bounded to MAX_EVENTS) and write it to the record."""
        obj = {"type": "event", "event": event, "step": int(step), "run": run, "time": round(self.elapsed(), 6)}
        obj.update(fields)
        self.keep(obj)
        self._write(obj)

    def keep(self, obj: dict) -> None:
        """Keep one event line as it is (a record being replayed), without writing it."""
        with self._events_lock:
            self._events.append(obj)
            if len(self._events) > MAX_EVENTS:
                del self._events[: len(self._events) - MAX_EVENTS]

    def note_raised(self, step: int, alert) -> None:
        """Count one raised alert in ``raised_tuple`` (bounded to MAX_RAISED)."""
        self._raised.append((step, alert))
        self.raised_tuple = tuple(self._raised)

    def step(self, rec, run: int) -> None:
        """Write one StepRecord as a step line (the caller decides which steps)."""
        if self.writer is None:
            return
        obj = {"type": "step", "run": run, "time": round(self.elapsed(), 6)}
        obj.update(rec.to_dict())
        self._write(obj)

    def alerts(self, events, step: int, run: int) -> None:
        """Journal the diagnoser's ("raised" | "cleared", Alert) pairs of one step."""
        for what, alert in events:
            if what == "raised":
                self.note_raised(step, alert)
            self.event(f"alert_{what}", step, run, alert=plain(alert.to_dict()))

    def _write(self, obj: dict) -> None:
        w = self.writer
        if w is None or w.failed:
            return
        try:
            w.write(obj)
        except RecordError as err:
            self.record_error = str(err)
            if self._on_error is not None:
                self._on_error()

    def close(self, reason: str, step: int, run: int, message: str) -> None:
        """Write the "end" event (when the header made it) and close the record; idempotent,
        and safe from any thread (the first caller writes the end line, later lines are ignored)."""
        w = self.writer
        if w is None:
            return
        with w.lock:
            if w.closed:
                return
            if not w.failed and w.lines:  # no "end" line in a file that never got its header
                try:
                    w.event("end", step, run=run, time=self.elapsed(), reason=reason, message=message)
                except RecordError as err:
                    self.record_error = str(err)
            w.close()

    # -- export ---------------------------------------------------------------------------------
    def export(self, snap, directory) -> str:
        """Write the run so far (header, the history's decimated points of ``snap``, the events)
        as a new JSON Lines record in ``directory``; returns its path. Raises RecordError."""
        directory = Path(directory).expanduser()
        if not directory.is_dir():
            raise RecordError(f"cannot export to {directory}: not a directory")
        cfg = snap.config
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = f"gradtui-{getattr(cfg, 'name', 'run')}-{stamp}"
        for i in range(1000):  # the name is claimed by creating the file, so concurrent exports never collide
            path = directory / (f"{base}.jsonl" if i == 0 else f"{base}-{i}.jsonl")
            try:
                writer = RecordWriter(path)
                break
            except RecordExists:
                continue
        else:
            raise RecordError(f"cannot export to {directory}: {base}.jsonl and 999 numbered variants already exist")
        try:
            h = snap.history
            writer.header(cfg, snap.layers or snap.layer_names, {
                "export": True, "stride": h.stride, "run": snap.run, "every": h.stride,
                "note": "decimated history: one step line every `stride` steps (finite steps only)"})
            for i, step in enumerate(h.steps):
                line = {"step": step, "loss": h.loss[i], "grad_norm_total": h.grad_norm_total[i],
                        "clipped": h.clipped[i], "nonfinite": False, "nonfinite_layer": None}
                for name, series in h.layers.items():
                    line[name] = list(series[i]) if series[i] else None
                writer.step(plain(line), run=snap.run)
            for ev in self.events():
                writer.write(plain(ev))
        finally:
            writer.close()
        return str(path)
