"""The live session: an Experiment stepping in a worker thread, steered by commands.

The interface never waits for training and training never waits for the interface:

* the worker thread owns the Experiment, the history, the diagnoser and the record;
* every other thread talks to it through a command queue (applied between steps,
  in order, none lost) and reads the latest :class:`Snapshot`, which the worker
  publishes by swapping one reference (no lock) at a bounded rate;
* the Numba kernels release the GIL, so a reader keeps its core while training runs.

The Session is the live source of steps: it owns the Experiment and feeds a
:class:`~gradtui.monitor.Monitor` (history, diagnosis, journal and record, snapshots),
the same monitor a replayed or followed record feeds. The parts:

* :mod:`~gradtui.session.session` (here): the public methods, the worker thread and its
  loop (steps in chunks sized to the step time), and publishing snapshots;
* :mod:`~gradtui.session.commands`: the queue other threads submit commands to;
* :mod:`~gradtui.session.control`: the run itself (Experiment, config, run number) and what
  each command does to it; :mod:`~gradtui.session.checkpoint`: the healthy weights;
* :mod:`~gradtui.session.run_state`: the one status and its transitions.

>>> s = Session(load_config("vanishing-sigmoid"), max_steps=500)
>>> s.start(); s.wait(); s.snapshot().latest["loss"]
"""

from __future__ import annotations

import numbers
import threading
import time
import traceback

from gradtui.monitor import Journal, Monitor, Snapshot
from gradtui.session.checkpoint import CHECKPOINT_EVERY
from gradtui.session.commands import CommandQueue
from gradtui.session.control import RunControl, with_next_seed
from gradtui.session.run_state import RunState
from gradtui.sources.protocol import LIVE

# Target duration of one kernel call of several steps. Between calls the worker needs the GIL
# for the steps' Python part (history, diagnosis, record); with the interface open, each time
# it may wait for a frame being drawn. Measured on vanishing-sigmoid with the interface open
# (README, bench_ui): at 10 ms the worker waited for the GIL about 50 times a second and lost
# 10-13% of its time; at 25 ms, 25-28 times and 6-7%. Commands wait for the call to end.
CHUNK_SECONDS = 0.025
MAX_CHUNK = 64
PUBLISH_INTERVAL = 0.05  # seconds between snapshots while running


class Session:
    """Runs one Experiment at a time in a background thread. See the module docstring.

    ``record_path`` opens a JSON Lines record at once (a RecordError is raised here,
    before any training, if it cannot be written); ``every`` records every K-th step;
    ``max_steps`` ends the run (status "finished") after that many steps of the current
    run; ``start_paused`` compiles and then waits for resume() or step_once().
    ``tier`` is the Experiment's (gradtui.engine.tiers): "auto" trains on NumPy while the
    kernels compile; the snapshot's ``tier`` says which one runs.
    """

    capabilities = LIVE

    def __init__(self, cfg, record_path=None, every: int = 1, force: bool = False, history_capacity: int = 2000,
                 start_paused: bool = False, max_steps: int | None = None, tier: str = "kernels"):
        if every < 1:
            raise ValueError(f"every must be at least 1, not {every}")
        if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral) or max_steps < 1):
            raise ValueError(f"max_steps must be a whole number of at least 1 (or None: no limit), not {max_steps!r}")
        self.every = int(every)
        self.monitor = Monitor(history_capacity)  # before the record: a bad capacity must not leave a file
        self._journal = self.monitor.journal = Journal(record_path, force=force, on_error=self._recording_stopped)
        self._state = RunState(start_paused)
        self._control = RunControl(cfg, self._state, self.monitor, self._journal, tier, self._publish, max_steps)
        self._commands = CommandQueue(cfg)
        self._thread: threading.Thread | None = None
        self._rate = 0.0
        self._rate_steps = 0
        self._rate_t = self._journal.t0
        self._snapshot = Snapshot(status="compiling", config=cfg, message=self._state.message,
                                  record_path=self._journal.path)

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
        return self._control.cfg

    @property
    def pending_config(self):
        """The config once every queued change is applied: what the next change builds on."""
        return self._commands.pending_config

    @property
    def commands_applied(self) -> int:
        """How many commands the worker has taken off the queue and applied so far."""
        return self._commands.applied

    @property
    def max_steps(self) -> int | None:
        """The current run ends (status "finished") after this many steps; None: no limit."""
        return self._control.max_steps

    @max_steps.setter
    def max_steps(self, value: int | None) -> None:
        self._control.max_steps = value

    @property
    def error_traceback(self) -> str:
        """The traceback of the last internal failure (training, a command, the diagnosis), or ""."""
        return self._state.error_traceback

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
        if self._thread is not None:
            try:
                self._thread.join(timeout)
            except RuntimeError:  # a Ctrl-C broke into start() before the worker ran: ended as if never started
                pass
            else:
                if self._thread.is_alive():
                    self._close_record("stopped")
                    return False
                return True
        self._state.status = "stopped"
        self._state.halted.set()
        self._close_record("stopped")
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Until the run finishes (max_steps), stops, fails, or pauses on a non-finite step.
        True when one of those happened, False on timeout."""
        return self._state.halted.wait(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- export -----------------------------------------------------------------------------
    def export(self, directory) -> str:
        """Write the run so far (header, the history's decimated points, the events) as a
        JSON Lines record in ``directory``; returns its path. Raises RecordError."""
        return self._journal.export(self._snapshot, directory)

    # -- worker -----------------------------------------------------------------------------
    def _recording_stopped(self, publish: bool = True) -> None:
        """The record could not be written: training goes on, the message says why."""
        self._state.message = f"recording stopped: {self._journal.record_error}"
        if publish:
            self._publish()

    def _close_record(self, reason: str) -> None:
        self._journal.close(reason, self._control.step, self._control.run, self._state.message)

    def _run_worker(self) -> None:
        reason = "stopped"
        control, state = self._control, self._state
        try:
            from gradtui.engine.blas import one_blas_thread

            with one_blas_thread():
                self._publish()
                control.start_fresh(control.cfg)
                if not self._journal.header(control.cfg, control.exp.layers, {"every": self.every}):
                    self._recording_stopped(publish=False)
                control.write_prediction()
                control.evaluate()
                state.begin(keep_message=bool(self._journal.record_error))
                self._publish()
                reason = self._loop()
        except Exception as err:  # noqa: BLE001 - the worker must report, not vanish
            state.fail(err, traceback.format_exc())
            reason = "error"
        finally:
            self._close_record(state.end(reason))
            self._publish()
            state.halted.set()
            self._commands.release_waiters()

    def _loop(self) -> str:
        commands, control, state = self._commands, self._control, self._state
        queued = commands.pending
        last_pub = time.perf_counter()
        while True:
            if queued:
                self._drain()
            if commands.stop_requested:
                return "stopped"
            exp = control.exp
            finished = control.max_steps is not None and exp.step_count >= control.max_steps
            if state.must_wait(finished):
                if state.settle_wait(finished, exp.step_count):
                    self._publish()
                commands.idle(0.2)
                continue
            single = state.take_one_step()
            k = 1 if single else self._chunk_size(exp.step_count)
            started = time.perf_counter()
            records = exp.run(k)
            if k == control.steps_per_call and len(records) == k:
                # aim for CHUNK_SECONDS per call: few GIL hand-overs, commands still applied promptly
                per_step = (time.perf_counter() - started) / k
                control.steps_per_call = max(1, min(MAX_CHUNK, int(CHUNK_SECONDS / max(per_step, 1e-7))))
            self._rate_steps += len(records)
            for rec in records:
                control.after_step(rec, self.every)
            if records[-1].nonfinite:
                continue
            state.stepped(single)
            now = time.perf_counter()
            if single or now - last_pub >= PUBLISH_INTERVAL:
                last_pub = now
                self._publish()

    def _chunk_size(self, step: int) -> int:
        """Steps for the next kernel call: the adaptive chunk, cut at the next evaluation,
        checkpoint and max_steps, so those happen exactly at their step."""
        control = self._control
        eval_every = control.cfg.train.eval_every
        k = min(control.steps_per_call, eval_every - step % eval_every, CHECKPOINT_EVERY - step % CHECKPOINT_EVERY)
        if control.max_steps is not None:
            k = min(k, control.max_steps - step)
        return max(k, 1)

    def _drain(self) -> None:
        """Apply every queued command (in the worker, between steps)."""
        self._commands.drain(self._control.handle)
        self._commands.settle(self._control.cfg)
        self._publish()

    # -- publishing -------------------------------------------------------------------------
    def _publish(self) -> None:
        """Build a Snapshot of the current state and swap it in (the worker's only shared write)."""
        state, control = self._state, self._control
        now = time.perf_counter()
        dt = now - self._rate_t
        if state.status != "running":
            self._rate, self._rate_steps, self._rate_t = 0.0, 0, now
        elif dt >= 0.25:
            inst = self._rate_steps / dt
            self._rate = inst if self._rate == 0.0 else 0.5 * self._rate + 0.5 * inst
            self._rate_steps, self._rate_t = 0, now
        exp = control.exp
        self._snapshot = self.monitor.publish(
            status=state.status,
            step=control.step,
            steps_per_second=self._rate,
            config=control.cfg,
            message=state.message,
            pause_reason=state.shown_pause_reason,
            run=control.run,
            tier=exp.tier if exp is not None else "",
            baseline_loss=exp.data.baseline_loss if exp is not None else None,
        )
