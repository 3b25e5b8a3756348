"""The live session: an Experiment stepping in a worker thread, steered by commands.

The interface never waits for training and training never waits for the interface:

* the worker thread owns the Experiment, the history, the diagnoser and the record;
* every other thread talks to it through a command queue (applied between steps,
  in order, none lost) and reads the latest :class:`Snapshot`, which the worker
  publishes by swapping one reference (no lock) at a bounded rate;
* the Numba kernels release the GIL, so a reader keeps its core while training runs.

The Session is the live source of steps: it owns the Experiment and feeds a
:class:`~gradtui.monitor.Monitor` (history, diagnosis, journal and record, snapshots),
the same monitor a replayed or followed record feeds. This module holds the worker
loop; the command queue is in :mod:`~gradtui.session.commands` and what commands do to
the run in :mod:`~gradtui.session.control`.

>>> s = Session(load_config("vanishing-sigmoid"), max_steps=500)
>>> s.start(); s.wait(); s.snapshot().latest["loss"]
"""

from __future__ import annotations

import numbers
import threading
import time
import traceback

from gradtui.monitor import Journal, Monitor, Snapshot
from gradtui.monitor.diagnoser import new_diagnoser
from gradtui.record import plain
from gradtui.session.commands import CommandQueue
from gradtui.session.control import CHECKPOINT_EVERY, RunControl, with_next_seed
from gradtui.sources.protocol import LIVE

CHUNK_SECONDS = 0.01  # target duration of one kernel call of several steps
MAX_CHUNK = 64
PUBLISH_INTERVAL = 0.05  # seconds between snapshots while running


class Session(RunControl):
    """Runs one Experiment at a time in a background thread. See the module docstring.

    ``record_path`` opens a JSON Lines record at once (a RecordError is raised here,
    before any training, if it cannot be written); ``every`` records every K-th step;
    ``max_steps`` ends the run (status "finished") after that many steps of the current
    run; ``start_paused`` compiles and then waits for resume() or step_once().
    ``tier`` is the Experiment's (gradtui.engine.tiers): "auto" trains on NumPy while the
    kernels compile; the snapshot's ``tier`` says which one runs.
    """

    def __init__(self, cfg, record_path=None, every: int = 1, force: bool = False, history_capacity: int = 2000,
                 start_paused: bool = False, max_steps: int | None = None, tier: str = "kernels"):
        if every < 1:
            raise ValueError(f"every must be at least 1, not {every}")
        if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral) or max_steps < 1):
            raise ValueError(f"max_steps must be a whole number of at least 1 (or None: no limit), not {max_steps!r}")
        self._cfg = cfg
        self._tier = tier
        self.every = int(every)
        self.max_steps = max_steps
        self.monitor = Monitor(history_capacity)  # before the record: a bad capacity must not leave a file
        self._journal = self.monitor.journal = Journal(record_path, force=force, on_error=self._recording_stopped)
        self._commands = CommandQueue(cfg)
        self._halted = threading.Event()  # finished, stopped, error, or paused on a non-finite step
        self._thread: threading.Thread | None = None
        self._paused = bool(start_paused)
        self._pause_reason = "user" if start_paused else ""
        self._single = 0
        self._status = "compiling"
        self._message = "compiling the kernels (first start only; later starts load them from the cache)"
        self._exp = None
        self._chunk = 1  # steps per kernel call, adapted to the step time
        self._checkpoint = None  # the last healthy Experiment.save_state(), see RunControl
        self._first_loss = None
        self._run = 0
        self._rate = 0.0
        self._rate_steps = 0
        self._rate_t = self._journal.t0
        self.error_traceback = ""
        self._snapshot = Snapshot(status="compiling", config=cfg, message=self._message,
                                  record_path=self._journal.path)

    capabilities = LIVE

    # -- reader side ------------------------------------------------------------------------
    @property
    def history(self):
        """The bounded history of the current run (the monitor's)."""
        return self.monitor.history

    def snapshot(self) -> Snapshot:
        """The latest published snapshot (lock-free: one reference read)."""
        return self._snapshot

    @property
    def config(self):
        """The config of the current run (changes applied so far)."""
        return self._cfg

    @property
    def pending_config(self):
        """The config once every queued change is applied: what the next change builds on."""
        return self._commands.pending_config

    @property
    def commands_applied(self) -> int:
        """How many commands the worker has taken off the queue and applied so far."""
        return self._commands.applied

    def events(self) -> list:
        """A copy of the session's event list (changes, restarts, alerts, evaluations ...)."""
        return self._journal.events()

    # -- commands (any thread) --------------------------------------------------------------
    def start(self) -> "Session":
        """Start the worker thread (kernels compile there; status "compiling" meanwhile)."""
        if self._thread is not None:
            raise RuntimeError("the session was already started")
        self._thread = threading.Thread(target=self._run_worker, name="gradtui-session", daemon=True)
        self._thread.start()
        return self

    def pause(self) -> None:
        self._commands.submit("pause")

    def resume(self) -> None:
        self._commands.submit("resume")

    def toggle_pause(self) -> None:
        self._commands.submit("toggle")

    def step_once(self) -> None:
        """While paused: take exactly one step. While running: pause."""
        self._commands.submit("step")

    def apply(self, overrides: dict) -> None:
        """Apply a config change (dotted keys): in place when the weights can carry over
        (activation, batch norm, residual, clipping, optimiser, learning rate ...), else a
        restart from a fresh initialisation. Raises ConfigError at once if the change is invalid.
        """
        overrides = dict(overrides)
        self._commands.submit_change("apply", overrides, lambda cfg: cfg.with_overrides(overrides))

    def restart(self, next_seed: bool = False) -> None:
        """Start the run again from a fresh initialisation (same seed, or the next one)."""
        self._commands.submit_change("restart", bool(next_seed), with_next_seed if next_seed else None)

    def wait_commands(self, timeout: float | None = None) -> bool:
        """Block until every command submitted so far has been applied; False on timeout."""
        return self._commands.wait_applied(lambda: self.alive, timeout)

    def stop(self, timeout: float = 1.0) -> bool:
        """Ask the worker to stop and wait up to ``timeout`` seconds; True when it has ended.

        Returns promptly even when a step is slow: the worker checks the flag between steps
        and closes the record when it leaves. If it is still busy (compiling, or in a long
        step) when the time is up, the record is closed here, with its "end" line, so that a
        process exiting now leaves a complete record; the worker's later lines are dropped.
        """
        self._commands.request_stop()
        if self._thread is None:
            self._status = "stopped"
            self._halted.set()
            self._close_record("stopped")
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._close_record("stopped")
            return False
        return True

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
        return self._journal.export(self._snapshot, directory)

    # -- worker -----------------------------------------------------------------------------
    def _event(self, event: str, step: int, **fields) -> None:
        self._journal.event(event, step, self._run, **fields)

    def _recording_stopped(self, publish: bool = True) -> None:
        """The record could not be written: training goes on, the message says why."""
        self._message = f"recording stopped: {self._journal.record_error}"
        if publish:
            self._publish()

    def _close_record(self, reason: str) -> None:
        step = self._exp.step_count if self._exp is not None else 0
        self._journal.close(reason, step, self._run, self._message)

    def _fresh(self, cfg) -> None:
        """Build a fresh Experiment for cfg (compiling kernels if needed) and make it current;
        the caller evaluates it (step 0) once the events that explain it are written."""
        from gradtui.engine import Experiment

        exp = Experiment(cfg, tier=self._tier)
        self._exp = exp
        self._cfg = cfg
        self.monitor.new_run(exp.layers, new_diagnoser(cfg, exp.layer_names))
        self._chunk = 1  # a new network: measure its step time afresh
        self._checkpoint_now()

    def _record_prediction(self) -> None:
        """Mean-field theory's prediction for the current config, as an event line; it is
        written at every start and change, because it changes with the config."""
        from gradtui.theory import predict

        step = self._exp.step_count if self._exp is not None else 0
        try:
            p = predict(self._cfg)
        except Exception as err:  # noqa: BLE001 - the theory is an aside; it must not stop training
            self._event("prediction", step, applies=False, reason=f"no prediction ({type(err).__name__}: {err})")
            return
        self._event("prediction", step, applies=p.applies, reason=p.reason, summary=p.summary(),
                    **plain({"attenuation": p.attenuation, "depth_scale": p.depth_scale, "chi1_star": p.chi1_star}))

    def _evaluate(self) -> None:
        exp = self._exp
        result = exp.evaluate()
        self.monitor.add_eval(exp.step_count, result)
        self._event("eval", exp.step_count, **plain(result))

    def _run_worker(self) -> None:
        reason = "stopped"
        try:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1):
                self._publish()
                self._fresh(self._cfg)
                if not self._journal.header(self._cfg, self._exp.layers, {"every": self.every}):
                    self._recording_stopped(publish=False)
                self._record_prediction()
                self._evaluate()
                if not self._journal.record_error:
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
            self._commands.release_waiters()

    def _loop(self) -> str:
        commands = self._commands
        queued = commands.pending
        writer = self._journal.writer
        interval = PUBLISH_INTERVAL
        last_pub = time.perf_counter()
        while True:
            if queued:
                self._drain()
            if commands.stop_requested:
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
                commands.idle(0.2)
                continue
            single = self._paused
            if single:
                self._single -= 1
                self._message = "paused: s takes one step, space resumes"
            k = 1 if single else self._chunk_size(exp.step_count)
            started = time.perf_counter()
            records = exp.run(k)
            if k == self._chunk and len(records) == k:
                # aim for CHUNK_SECONDS per call: few GIL hand-overs, commands still applied promptly
                per_step = (time.perf_counter() - started) / k
                self._chunk = max(1, min(MAX_CHUNK, int(CHUNK_SECONDS / max(per_step, 1e-7))))
            for rec in records:
                self._after_step(rec, writer)
            if records[-1].nonfinite:
                continue
            if self._status != "running" and not single:
                self._status = "running"
            now = time.perf_counter()
            if single or now - last_pub >= interval:
                last_pub = now
                self._publish()

    def _chunk_size(self, step: int) -> int:
        """Steps for the next kernel call: the adaptive chunk, cut at the next evaluation,
        checkpoint and max_steps, so those happen exactly at their step."""
        k = min(self._chunk, self._cfg.train.eval_every - step % self._cfg.train.eval_every,
                CHECKPOINT_EVERY - step % CHECKPOINT_EVERY)
        if self.max_steps is not None:
            k = min(k, self.max_steps - step)
        return max(k, 1)

    def _after_step(self, rec, writer) -> None:
        """Everything one finished step feeds: history, diagnosis, checkpoint, evaluation, record."""
        self._rate_steps += 1
        if rec.nonfinite:
            self._on_nonfinite(rec)
            return
        self._observe(rec)
        self._maybe_checkpoint(rec)
        if rec.step % self._cfg.train.eval_every == 0:
            self._evaluate()
        if writer is not None and rec.step % self.every == 0 and not writer.failed:
            self._journal.step(rec, self._run)

    def _observe(self, rec) -> None:
        """Feed one step to the monitor; a diagnosis failure becomes the message."""
        monitor = self.monitor
        monitor.observe(rec, self._run)
        if monitor.notice:
            self.error_traceback = monitor.error_traceback
            self._message, monitor.notice = monitor.notice, ""

    # -- commands, in the worker (what each one does: gradtui.session.control) ------------------
    def _drain(self) -> None:
        self._commands.drain(self._handle)
        self._commands.settle(self._cfg)
        self._publish()

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
        exp = self._exp
        self._snapshot = self.monitor.publish(
            status=self._status,
            step=exp.step_count if exp is not None else 0,
            steps_per_second=self._rate,
            config=self._cfg,
            message=self._message,
            pause_reason=self._pause_reason if self._paused else "",
            run=self._run,
            tier=exp.tier if exp is not None else "",
            baseline_loss=exp.data.baseline_loss if exp is not None else None,
        )

