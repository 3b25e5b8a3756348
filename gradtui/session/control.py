"""The live run and the commands that change it.

:class:`RunControl` owns what the worker thread trains: the Experiment, its config, the
run number (a restart or a change that needs fresh weights starts run n+1), the healthy
checkpoint (:mod:`~gradtui.session.checkpoint`) and how many steps one kernel call takes.
It carries out the commands between steps (pause and resume, single steps, config changes
in place when the weights can carry over or else with fresh weights, restarts), pauses on
a non-finite step, and feeds each finished step to the session's
:class:`~gradtui.monitor.Monitor` and :class:`~gradtui.monitor.Journal`. The status it
changes is the session's :class:`~gradtui.session.run_state.RunState`; everything viewers
see goes through the monitor.
"""

from __future__ import annotations

import traceback

from gradtui.config import ConfigError
from gradtui.config.changes import changed_keys, restart_keys
from gradtui.config.summary import change_text, setting_label
from gradtui.monitor.diagnoser import NoDiagnoser, new_diagnoser
from gradtui.record import plain
from gradtui.session.checkpoint import HealthyCheckpoint


def with_next_seed(cfg):
    """cfg with the next training seed (a new run that differs from the last)."""
    return cfg.with_overrides({"train.seed": cfg.train.seed + 1})


class RunControl:
    """See the module docstring. ``publish`` is called when viewers must see a state at once
    (a change that rebuilds the network says so before it compiles). Worker thread only."""

    def __init__(self, cfg, state, monitor, journal, tier: str, publish, max_steps: int | None = None):
        self.cfg = cfg
        self.max_steps = max_steps  # the run ends (status "finished") after this many steps
        self.exp = None
        self.run = 0
        self.steps_per_call = 1  # measured by the session's loop; 1 again whenever the network changes
        self.checkpoint = HealthyCheckpoint()
        self.state = state
        self.monitor = monitor
        self.journal = journal
        self._tier = tier
        self._publish = publish

    @property
    def step(self) -> int:
        return self.exp.step_count if self.exp is not None else 0

    # -- the run's parts -------------------------------------------------------------------------
    def event(self, event: str, step: int, **fields) -> None:
        self.journal.event(event, step, self.run, **fields)

    def start_fresh(self, cfg) -> None:
        """Build a fresh Experiment for cfg (compiling kernels if needed) and make it current;
        the caller evaluates it (step 0) once the events that explain it are written."""
        from gradtui.engine import Experiment

        exp = Experiment(cfg, tier=self._tier)
        self.exp = exp
        self.cfg = cfg
        self.monitor.new_run(exp.layers, new_diagnoser(cfg, exp.layer_names))
        self.steps_per_call = 1  # a new network: measure its step time afresh
        self.checkpoint.take(exp)

    def write_prediction(self) -> None:
        """Mean-field theory's prediction for the current config, as an event line; it is
        written at every start and change, because it changes with the config."""
        from gradtui.theory import prediction_fields

        fields = prediction_fields(self.cfg)
        self.monitor.note_prediction(fields)
        self.event("prediction", self.step, **fields)

    def evaluate(self) -> None:
        exp = self.exp
        result = exp.evaluate()
        self.monitor.add_eval(exp.step_count, result)
        self.event("eval", exp.step_count, **plain(result))

    # -- each step -----------------------------------------------------------------------------
    def after_step(self, rec, every: int) -> None:
        """Everything one finished step feeds: history, diagnosis, checkpoint, evaluation, record."""
        if rec.nonfinite:
            self._on_nonfinite(rec)
            return
        self._observe(rec)
        self.checkpoint.consider(rec, self.exp, self.monitor.diagnosis)
        if rec.step % self.cfg.train.eval_every == 0:
            self.evaluate()
        writer = self.journal.writer
        if writer is not None and rec.step % every == 0 and not writer.failed:
            self.journal.step(rec, self.run)

    def _observe(self, rec) -> None:
        """Feed one step to the monitor; a diagnosis failure becomes the message."""
        monitor = self.monitor
        monitor.observe(rec, self.run)
        if monitor.notice:
            self.state.error_traceback = monitor.error_traceback
            self.state.message, monitor.notice = monitor.notice, ""

    def _on_nonfinite(self, rec) -> None:
        """A step produced NaN or Inf (its update was not applied): pause and say where."""
        where = rec.nonfinite_layer or "?"
        self.state.pause_on_nonfinite(
            f"paused at step {rec.step:,}: non-finite values (NaN or Inf) appeared in {where}; "
            "the update was not applied. A remedy that keeps the weights (gradient clipping, a lower "
            f"learning rate, batch norm) or resuming goes back to the last healthy weights (step {self.checkpoint.step}); "
            "another initialisation or a new run starts afresh.")
        self.journal.step(rec, self.run)
        self.event("nonfinite", rec.step, layer=where)
        self._observe(rec)  # the marker, the diagnosis and its alert events
        self._publish()
        self.state.halted.set()

    # -- commands ------------------------------------------------------------------------------
    def handle(self, name: str, arg) -> None:
        """Apply one command from the queue; a failure is reported, never fatal."""
        try:
            self._apply_command(name, arg)
        except Exception as err:  # noqa: BLE001 - a bad command must not kill the run
            self.state.error_traceback = traceback.format_exc()
            self.state.message = f"{name} failed: {type(err).__name__}: {err}"

    def _apply_command(self, name: str, arg) -> None:
        state = self.state
        if name == "pause":
            state.pause()
        elif name == "resume":
            self._resume()
        elif name == "toggle":
            self._resume() if state.paused else state.pause()
        elif name == "step":
            state.ask_one_step()
        elif name == "apply":
            self._apply_change(arg)
        elif name == "restart":
            self._restart(arg)
        else:  # pragma: no cover
            raise ValueError(f"unknown command {name!r}")

    def _resume(self) -> None:
        if self.state.nonfinite_pause and self._roll_back_if_ruined():
            self.event("rollback", self.exp.step_count, to_step=self.checkpoint.step)
        self.state.resume()

    def _roll_back_if_ruined(self) -> str:
        """After a non-finite pause, return to the healthy checkpoint; says what it did."""
        if not self.state.nonfinite_pause or not self.checkpoint.restore(self.exp, self.cfg):
            return ""
        back = self.checkpoint.step
        self.monitor.history.add_marker(self.exp.step_count, f"weights back to step {back}")
        return f"; the weights went back to the last healthy checkpoint (step {back})"

    def _apply_change(self, overrides: dict) -> None:
        old = self.cfg
        try:
            new = old.with_overrides(overrides)
        except ConfigError as err:
            self.state.message = f"change refused: {err}"
            return
        changed = changed_keys(old, new)
        if not changed:
            self.state.message = "no change: " + ", ".join(f"{k} is already {v}" for k, v in overrides.items())
            return
        text = change_text((k, new.get(k)) for k in changed)
        self.monitor.keep_before(text, self.run)
        blocked = restart_keys(old, new)
        if blocked:
            self._rebuild(new, text, overrides, changed, blocked)
        else:
            self._reconfigure(new, text, overrides, changed)
        self._after_change()

    def _reconfigure(self, new, text: str, overrides: dict, changed) -> None:
        """A change the weights carry over: the Experiment takes the new config in place."""
        step = self.exp.step_count
        rolled = self._roll_back_if_ruined()
        self.exp.reconfigure(new)
        self.cfg = new
        diagnosis = self.monitor.diagnosis
        if not isinstance(diagnosis, NoDiagnoser):  # after a diagnosis failure it stays off
            diagnosis.set_config(new)  # keeps active alerts; they clear when the problem has gone
        self.steps_per_call = 1  # the step time may have changed (batch norm, another activation)
        self.monitor.history.add_marker(step, text)
        self.state.message = f"applied {text} at step {step:,}; the weights carried over{rolled}"
        self.event("change", step, overrides=plain(overrides), changed=changed, mode="in_place",
                   config=new.to_dict(), rolled_back_to=(self.checkpoint.step if rolled else None))
        self.write_prediction()
        self.checkpoint.take(self.exp)

    def _rebuild(self, new, text: str, overrides: dict, changed, blocked) -> None:
        """A change that needs fresh weights: a new network and run."""
        step = self.exp.step_count
        before = self.state.rebuilding(f"restarting with {text}: fresh weights")
        self._publish()
        try:
            self.start_fresh(new)
        except Exception:
            self.state.status = before
            raise
        self.run += 1
        self.event("change", step, overrides=plain(overrides), changed=changed, mode="restart",
                   needs_fresh_weights=blocked, config=new.to_dict(), layers=[layer.to_dict() for layer in self.exp.layers])
        self.write_prediction()
        self.evaluate()
        self.monitor.history.add_marker(0, f"{text} (fresh weights)")
        self.state.message = (f"applied {text}: {', '.join(setting_label(k) for k in blocked)} "
                              "needs fresh weights, so training restarted")
        self.state.rebuilt()

    def _restart(self, next_seed: bool) -> None:
        cfg = with_next_seed(self.cfg) if next_seed else self.cfg
        step = self.exp.step_count
        text = f"restart (seed {cfg.train.seed})"
        self.monitor.keep_before(text, self.run)
        self.start_fresh(cfg)
        self.run += 1
        self.event("restart", step, seed=cfg.train.seed, config=cfg.to_dict())
        self.write_prediction()
        self.evaluate()
        self.monitor.history.add_marker(0, text)
        self.state.message = f"restarted from a fresh initialisation, seed {cfg.train.seed}"
        self.state.rebuilt()
        self._after_change()

    def _after_change(self) -> None:
        self.state.after_change(self.max_steps is None or self.exp.step_count < self.max_steps)
