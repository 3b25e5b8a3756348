"""The live session: an Experiment stepping in a worker thread, steered by commands.

The interface never waits for training and training never waits for the interface:

* the worker thread owns the Experiment, the history, the diagnoser and the record;
* every other thread talks to it through a command queue (applied between steps,
  in order, none lost) and reads the latest :class:`Snapshot`, which the worker
  publishes by swapping one reference (no lock) at a bounded rate;
* the Numba kernels release the GIL, so a reader keeps its core while training runs.

>>> s = Session(load_config("vanishing-sigmoid"), max_steps=500)
>>> s.start(); s.wait(); s.snapshot().latest["loss"]
"""

from __future__ import annotations

import collections
import threading
import time
import traceback
from datetime import datetime
from pathlib import Path

from gradtui.config import ConfigError
from gradtui.config.changes import changed_keys, restart_keys
from gradtui.record import RecordError, RecordWriter, plain
from gradtui.session.history import LAYER_STATS, History
from gradtui.session.snapshot import Snapshot

try:  # the diagnosis lands in its own issue; the session works without it
    from gradtui.diagnosis import Diagnoser as _Diagnoser
except ImportError:  # pragma: no cover - depends on the tree
    _Diagnoser = None

PUBLISH_INTERVAL = 0.05  # seconds between snapshots while running
MAX_EVENTS = 10_000
MAX_RAISED = 500


class _NoDiagnoser:
    """Stands in when gradtui.diagnosis is not available: no alerts."""

    def observe(self, rec):
        return []

    def active(self):
        return ()


def _layer_profile(rec, names, change: str, run: int) -> dict:
    """The per-layer profile of one StepRecord, as plain values, for ``Snapshot.before``."""
    out = {"step": int(rec.step), "run": run, "change": change, "layer_names": tuple(names), "loss": float(rec.loss)}
    for name in ("grad_norm", "delta_norm") + tuple(s for s in LAYER_STATS if s not in ("grad_norm", "delta_norm")):
        out[name] = tuple(getattr(rec, name).tolist())
    tdn = rec.time_delta_norm
    out["time_delta_norm"] = None if tdn is None else tuple(tdn.tolist())
    return out


class Session:
    """Runs one Experiment at a time in a background thread. See the module docstring.

    ``record_path`` opens a JSON Lines record at once (a RecordError is raised here,
    before any training, if it cannot be written); ``every`` records every K-th step;
    ``max_steps`` ends the run (status "finished") after that many steps of the current
    run; ``start_paused`` compiles and then waits for resume() or step_once().
    """

    def __init__(self, cfg, record_path=None, every: int = 1, force: bool = False, history_capacity: int = 2000,
                 start_paused: bool = False, max_steps: int | None = None):
        if every < 1:
            raise ValueError(f"every must be at least 1, not {every}")
        self._cfg = cfg
        self._pending_cfg = cfg  # the config after every queued change, to validate apply() at once
        self._pending_lock = threading.Lock()
        self.every = int(every)
        self.max_steps = max_steps
        self._writer = RecordWriter(record_path, force=force) if record_path is not None else None
        self._record_error = ""
        self.history = History(history_capacity)
        self._commands: collections.deque = collections.deque()
        self._submitted = 0
        self._applied = 0
        self._applied_cond = threading.Condition()
        self._wake = threading.Event()
        self._halted = threading.Event()  # finished, stopped, error, or paused on a non-finite step
        self._stop_flag = False
        self._thread: threading.Thread | None = None
        self._paused = bool(start_paused)
        self._pause_reason = "user" if start_paused else ""
        self._single = 0
        self._status = "compiling"
        self._message = "compiling the kernels (first start only; later starts load them from the cache)"
        self._exp = None
        self._diag = _NoDiagnoser()
        self._layer_names: tuple = ()
        self._run = 0
        self._last = None  # latest StepRecord
        self._last_finite = None
        self._latest_dict: dict = {}
        self._latest_for = None
        self._evaluation: dict = {}
        self._before = None
        self._events: list = []
        self._events_lock = threading.Lock()
        self._raised: collections.deque = collections.deque(maxlen=MAX_RAISED)
        self._raised_tuple: tuple = ()
        self._version = 0
        self._t0 = time.perf_counter()
        self._rate = 0.0
        self._rate_steps = 0
        self._rate_t = self._t0
        self.error_traceback = ""
        self.diagnosis_available = _Diagnoser is not None
        self._snapshot = Snapshot(status="compiling", config=cfg, message=self._message,
                                  record_path=str(self._writer.path) if self._writer else "")

    # -- reader side ------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The latest published snapshot (lock-free: one reference read)."""
        return self._snapshot

    @property
    def config(self):
        """The config of the current run (changes applied so far)."""
        return self._cfg

    @property
    def commands_applied(self) -> int:
        """How many commands the worker has taken off the queue and applied so far."""
        return self._applied

    def events(self) -> list:
        """A copy of the session's event list (changes, restarts, alerts, evaluations ...)."""
        with self._events_lock:
            return list(self._events)

    # -- commands (any thread) --------------------------------------------------------------
    def start(self) -> "Session":
        """Start the worker thread (kernels compile there; status "compiling" meanwhile)."""
        if self._thread is not None:
            raise RuntimeError("the session was already started")
        self._thread = threading.Thread(target=self._run_worker, name="gradtui-session", daemon=True)
        self._thread.start()
        return self

    def _submit(self, name: str, arg=None) -> None:
        with self._applied_cond:
            self._submitted += 1
        self._commands.append((name, arg))
        self._wake.set()

    def pause(self) -> None:
        self._submit("pause")

    def resume(self) -> None:
        self._submit("resume")

    def toggle_pause(self) -> None:
        self._submit("toggle")

    def step_once(self) -> None:
        """While paused: take exactly one step. While running: pause."""
        self._submit("step")

    def apply(self, overrides: dict) -> None:
        """Apply a config change (dotted keys): in place when the weights can carry over
        (activation, batch norm, residual, clipping, optimiser, learning rate ...), else a
        restart from a fresh initialisation. Raises ConfigError at once if the change is invalid.
        """
        overrides = dict(overrides)
        with self._pending_lock:
            self._pending_cfg = self._pending_cfg.with_overrides(overrides)
            self._submit("apply", overrides)

    def restart(self, next_seed: bool = False) -> None:
        """Start the run again from a fresh initialisation (same seed, or the next one)."""
        with self._pending_lock:
            if next_seed:
                self._pending_cfg = self._pending_cfg.with_overrides({"train.seed": self._pending_cfg.train.seed + 1})
            self._submit("restart", bool(next_seed))

    def wait_commands(self, timeout: float | None = None) -> bool:
        """Block until every command submitted so far has been applied; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._applied_cond:
            target = self._submitted
            while self._applied < target:
                if self._thread is None or not self._thread.is_alive():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._applied_cond.wait(0.1 if remaining is None else min(remaining, 0.1))
        return True

    def stop(self, timeout: float = 1.0) -> bool:
        """Ask the worker to stop and wait up to ``timeout`` seconds; True when it has ended.

        Returns promptly even when a step is slow: the worker checks the flag between steps
        and closes the record when it leaves.
        """
        self._stop_flag = True
        self._wake.set()
        if self._thread is None:
            self._status = "stopped"
            self._halted.set()
            self._close_record("stopped")
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Until the run finishes (max_steps), stops, fails, or pauses on a non-finite step.
        True when one of those happened, False on timeout."""
        return self._halted.wait(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- export -----------------------------------------------------------------------------
    def export(self, directory) -> str:
        """Write the run so far (header, the history's decimated points, the events) as a
        JSON Lines record in ``directory``; returns its path. Raises RecordError."""
        snap = self._snapshot
        directory = Path(directory).expanduser()
        if not directory.is_dir():
            raise RecordError(f"cannot export to {directory}: not a directory")
        cfg = snap.config
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = f"gradtui-{getattr(cfg, 'name', 'run')}-{stamp}"
        for i in range(1000):
            path = directory / (f"{base}.jsonl" if i == 0 else f"{base}-{i}.jsonl")
            if not path.exists():
                break
        writer = RecordWriter(path)
        try:
            h = snap.history
            writer.header(cfg, snap.layer_names, {"export": True, "stride": h.stride, "run": snap.run,
                                                  "note": "decimated history: one step line every `stride` steps"})
            for i, step in enumerate(h.steps):
                line = {"step": step, "loss": plain(h.loss[i]), "grad_norm_total": plain(h.grad_norm_total[i])}
                for name, series in h.layers.items():
                    line[name] = plain(list(series[i]))
                writer.step(line, run=snap.run)
            for ev in self.events():
                writer.write(plain(ev))
        finally:
            writer.close()
        return str(path)

    # -- worker -----------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def _event(self, event: str, step: int, **fields) -> None:
        obj = {"type": "event", "event": event, "step": int(step), "run": self._run, "time": round(self._elapsed(), 6)}
        obj.update(fields)
        with self._events_lock:
            self._events.append(obj)
            if len(self._events) > MAX_EVENTS:
                del self._events[: len(self._events) - MAX_EVENTS]
        self._write(obj)

    def _write(self, obj: dict) -> None:
        w = self._writer
        if w is None or w.failed:
            return
        try:
            w.write(obj)
        except RecordError as err:
            self._record_error = str(err)
            self._message = f"recording stopped: {err}"
            self._publish()

    def _close_record(self, reason: str) -> None:
        w = self._writer
        if w is None or w.closed:
            return
        if not w.failed and w.lines:  # no "end" line in a file that never got its header
            step = self._exp.step_count if self._exp is not None else 0
            try:
                w.event("end", step, run=self._run, time=self._elapsed(), reason=reason, message=self._message)
            except RecordError as err:
                self._record_error = str(err)
        w.close()

    def _new_diagnoser(self, cfg, names):
        if _Diagnoser is None:
            return _NoDiagnoser()
        return _Diagnoser(cfg, list(names))

    def _fresh(self, cfg) -> None:
        """Build a fresh Experiment for cfg (compiling kernels if needed) and make it current;
        the caller evaluates it (step 0) once the events that explain it are written."""
        from gradtui.engine import Experiment

        exp = Experiment(cfg)
        self._exp = exp
        self._cfg = cfg
        self._layer_names = tuple(exp.layer_names)
        self._diag = self._new_diagnoser(cfg, self._layer_names)
        self.history.clear()
        self._last = self._last_finite = None
        self._evaluation = {}

    def _evaluate(self) -> None:
        exp = self._exp
        result = exp.evaluate()
        self._evaluation = result
        self.history.add_eval(exp.step_count, result)
        self._event("eval", exp.step_count, **plain(result))

    def _run_worker(self) -> None:
        reason = "stopped"
        try:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1):
                self._publish()
                self._fresh(self._cfg)
                if self._writer is not None:
                    try:
                        self._writer.header(self._cfg, self._layer_names, {"every": self.every})
                    except RecordError as err:
                        self._record_error = str(err)
                        self._message = f"recording stopped: {err}"
                self._evaluate()
                if not self._record_error:
                    self._message = "paused before the first step" if self._paused else ""
                self._status = "paused" if self._paused else "running"
                self._publish()
                reason = self._loop()
        except Exception as err:  # noqa: BLE001 - the worker must report, not vanish
            self.error_traceback = traceback.format_exc()
            self._status = "error"
            self._message = f"training failed: {type(err).__name__}: {err}"
            reason = "error"
        finally:
            if reason == "stopped":
                if self._status == "finished":
                    reason = "finished"
                elif self._pause_reason == "nonfinite":
                    reason = "nonfinite"
                self._status = "stopped"
            self._close_record(reason)
            self._publish()
            self._halted.set()
            with self._applied_cond:
                self._applied_cond.notify_all()

    def _loop(self) -> str:
        commands = self._commands
        history = self.history
        interval = PUBLISH_INTERVAL
        last_pub = time.perf_counter()
        while True:
            if commands:
                self._drain()
            if self._stop_flag:
                return "stopped"
            exp = self._exp
            finished = self.max_steps is not None and exp.step_count >= self.max_steps
            if finished or (self._paused and self._single <= 0):
                status = "finished" if finished and not (self._paused and self._pause_reason == "nonfinite") else "paused"
                if status != self._status:
                    self._status = status
                    if finished and status == "finished":
                        self._message = f"finished {exp.step_count} steps"
                    self._publish()
                if status == "finished" or self._pause_reason == "nonfinite":
                    self._halted.set()
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            single = self._paused
            if single:
                self._single -= 1
            rec = exp.step()
            self._last = rec
            self._rate_steps += 1
            if rec.nonfinite:
                self._on_nonfinite(rec)
                continue
            self._last_finite = rec
            history.add_step(rec)
            try:
                events = self._diag.observe(rec)
            except Exception as err:  # noqa: BLE001 - a diagnosis bug must not stop training
                self._diagnosis_failed(err)
                events = None
            if events:
                self._on_alerts(events)
            step = rec.step
            if step % self._cfg.train.eval_every == 0:
                self._evaluate()
            if self._writer is not None and step % self.every == 0 and not self._writer.failed:
                self._write_step(rec)
            if self._status != "running" and not single:
                self._status = "running"
            now = time.perf_counter()
            if single or now - last_pub >= interval:
                last_pub = now
                self._publish()

    def _diagnosis_failed(self, err) -> None:
        self.error_traceback = traceback.format_exc()
        self._diag = _NoDiagnoser()
        self.diagnosis_available = False
        self._message = f"diagnosis failed ({type(err).__name__}: {err}); training goes on without alerts"

    def _write_step(self, rec) -> None:
        obj = {"type": "step", "run": self._run, "time": round(self._elapsed(), 6)}
        obj.update(rec.to_dict())
        self._write(obj)

    def _on_nonfinite(self, rec) -> None:
        where = rec.nonfinite_layer or "?"
        self._paused = True
        self._pause_reason = "nonfinite"
        self._single = 0
        self._status = "paused"
        self._message = (f"paused at step {rec.step}: non-finite values (NaN or Inf) appeared in {where}; "
                         f"the update was not applied, the weights are those after step {rec.step - 1}. "
                         "Apply a remedy (clipping, a lower learning rate, another init) or restart.")
        self.history.add_marker(rec.step, f"non-finite in {where}")
        try:
            events = self._diag.observe(rec)
        except Exception:  # noqa: BLE001
            events = []
        if self._writer is not None:
            self._write_step(rec)
        self._event("nonfinite", rec.step, layer=where)
        if events:
            self._on_alerts(events)
        self._publish()
        self._halted.set()

    def _on_alerts(self, events) -> None:
        step = self._exp.step_count
        for what, alert in events:
            if what == "raised":
                self._raised.append((step, alert))
                self._raised_tuple = tuple(self._raised)
            self._event(f"alert_{what}", step, alert=plain(alert.to_dict()))

    # -- commands, in the worker --------------------------------------------------------------
    def _drain(self) -> None:
        commands = self._commands
        while commands and not self._stop_flag:
            name, arg = commands.popleft()
            try:
                self._apply_command(name, arg)
            except Exception as err:  # noqa: BLE001 - a bad command must not kill the run
                self.error_traceback = traceback.format_exc()
                self._message = f"{name} failed: {type(err).__name__}: {err}"
            finally:
                with self._applied_cond:
                    self._applied += 1
                    self._applied_cond.notify_all()
        with self._pending_lock:
            if not commands:
                self._pending_cfg = self._cfg  # drop changes the worker refused
        self._publish()

    def _apply_command(self, name: str, arg) -> None:
        if name == "pause":
            self._pause()
        elif name == "resume":
            self._resume()
        elif name == "toggle":
            if self._paused:
                self._resume()
            else:
                self._pause()
        elif name == "step":
            if self._paused:
                self._single += 1
            else:
                self._pause()
        elif name == "apply":
            self._apply_change(arg)
        elif name == "restart":
            self._restart(arg)
        else:  # pragma: no cover
            raise ValueError(f"unknown command {name!r}")

    def _pause(self) -> None:
        if not self._paused:
            self._paused = True
            self._pause_reason = "user"
            self._single = 0
            self._status = "paused"
            self._message = "paused"

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            self._pause_reason = ""
            self._single = 0
            self._message = ""
            self._halted.clear()
            if self._status == "paused":
                self._status = "running"

    def _keep_before(self, change: str) -> None:
        rec = self._last_finite
        if rec is not None:
            self._before = _layer_profile(rec, self._layer_names, change, self._run)

    def _apply_change(self, overrides: dict) -> None:
        old = self._cfg
        try:
            new = old.with_overrides(overrides)
        except ConfigError as err:
            self._message = f"change refused: {err}"
            return
        changed = changed_keys(old, new)
        if not changed:
            self._message = "no change: " + ", ".join(f"{k} is already {v}" for k, v in overrides.items())
            return
        text = ", ".join(f"{k}={new.get(k)}" for k in changed)
        blocked = restart_keys(old, new)
        step = self._exp.step_count
        if not blocked:
            self._keep_before(text)
            self._exp.reconfigure(new)
            self._cfg = new
            if hasattr(self._diag, "set_config"):  # keeps active alerts; they clear when the problem has gone
                self._diag.set_config(new)
            else:
                self._diag = self._new_diagnoser(new, self._layer_names)
            self.history.add_marker(step, text)
            self._message = f"applied {text} at step {step}; the weights carried over"
            self._event("change", step, overrides=plain(overrides), changed=changed, mode="in_place",
                        config=new.to_dict())
            self._after_change()
            return
        self._keep_before(text)
        old_run, old_status = self._run, self._status
        self._status = "compiling"
        self._message = f"restarting with {text}: fresh weights"
        self._publish()
        try:
            self._fresh(new)
        except Exception:
            self._status = old_status
            raise
        self._run = old_run + 1
        self._event("change", step, overrides=plain(overrides), changed=changed, mode="restart",
                    needs_fresh_weights=blocked, config=new.to_dict(), layer_names=list(self._layer_names))
        self._evaluate()
        self.history.add_marker(0, f"{text} (fresh weights)")
        self._message = f"applied {text}: {', '.join(blocked)} needs fresh weights, so training restarted"
        self._status = "paused" if self._paused else "running"
        self._after_change()

    def _after_change(self) -> None:
        """A change or restart may leave a non-finite pause: resume is up to the user, but
        the pause is now an ordinary one."""
        if self._pause_reason == "nonfinite":
            self._pause_reason = "user"
            self._halted.clear()
        if self.max_steps is None or self._exp.step_count < self.max_steps:
            if self._status == "finished":
                self._status = "paused" if self._paused else "running"
            self._halted.clear()

    def _restart(self, next_seed: bool) -> None:
        cfg = self._cfg
        if next_seed:
            cfg = cfg.with_overrides({"train.seed": cfg.train.seed + 1})
        step = self._exp.step_count
        text = f"restart (seed {cfg.train.seed})"
        self._keep_before(text)
        self._fresh(cfg)
        self._run += 1
        self._event("restart", step, seed=cfg.train.seed, config=cfg.to_dict())
        self._evaluate()
        self.history.add_marker(0, text)
        self._message = f"restarted from a fresh initialisation, seed {cfg.train.seed}"
        self._status = "paused" if self._paused else "running"
        self._after_change()

    # -- publishing -------------------------------------------------------------------------
    def _publish(self) -> None:
        """Build a Snapshot of the current state and swap it in (the worker's only shared write)."""
        now = time.perf_counter()
        dt = now - self._rate_t
        if self._status != "running":
            self._rate, self._rate_steps, self._rate_t = 0.0, 0, now
        elif dt >= 0.25:
            inst = self._rate_steps / dt
            self._rate = inst if self._rate == 0.0 else 0.5 * self._rate + 0.5 * inst
            self._rate_steps, self._rate_t = 0, now
        rec = self._last
        if rec is not None and self._latest_for is not rec:
            self._latest_dict = rec.to_dict()
            self._latest_for = rec
        elif rec is None:
            self._latest_dict = {}
        exp = self._exp
        self._version += 1
        self._snapshot = Snapshot(
            status=self._status,
            step=exp.step_count if exp is not None else 0,
            steps_per_second=self._rate,
            config=self._cfg,
            layer_names=self._layer_names,
            latest=self._latest_dict,
            history=self.history.view(),
            before=self._before,
            alerts=tuple(self._diag.active()),
            evaluation=dict(self._evaluation),
            message=self._message,
            version=self._version,
            pause_reason=self._pause_reason if self._paused else "",
            run=self._run,
            record_path=str(self._writer.path) if self._writer else "",
            record_error=self._record_error,
            raised=self._raised_tuple,
        )

