"""The live session's control of its run: the commands (pause and resume, single steps,
config changes in place when the weights can carry over or else with fresh weights,
restarts), the healthy checkpoint and rollback, and the pause on a non-finite step.

:class:`RunControl` is the part of :class:`~gradtui.session.Session` that runs these
commands in the worker thread, between steps. It changes the run's control state (the
Experiment, the config, the status, the pause, the message) and tells the session's
:class:`~gradtui.monitor.Monitor` what happened (markers, the profile before a change,
events); everything viewers see goes through the monitor.
"""

from __future__ import annotations

import traceback

from gradtui.config import ConfigError
from gradtui.config.changes import changed_keys, restart_keys
from gradtui.config.summary import change_text, setting_label
from gradtui.record import plain
from gradtui.monitor.diagnoser import NoDiagnoser


CHECKPOINT_EVERY = 50  # steps between healthy checkpoints
HEALTHY_LOSS_FACTOR = 10.0  # a checkpoint needs the loss below this multiple of the run's first loss
UNHEALTHY_ALERTS = ("exploding", "nonfinite")


def with_next_seed(cfg):
    """cfg with the next training seed (a new run that differs from the last)."""
    return cfg.with_overrides({"train.seed": cfg.train.seed + 1})


class RunControl:
    """The worker's side of the commands, a base of Session. It uses the session's control
    state (``_cfg``, ``_exp``, ``_run``, ``_status``, ``_message``, ``_paused``,
    ``_pause_reason``, ``_single``, ``_halted``, ``max_steps``), its ``monitor``, and the
    methods ``_fresh``, ``_evaluate``, ``_event``, ``_observe`` and ``_publish``."""

    def _handle(self, name: str, arg) -> None:
        """Apply one command from the queue; a failure is reported, never fatal."""
        try:
            self._apply_command(name, arg)
        except Exception as err:  # noqa: BLE001 - a bad command must not kill the run
            self.error_traceback = traceback.format_exc()
            self._message = f"{name} failed: {type(err).__name__}: {err}"

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
        if self._paused and self._pause_reason == "nonfinite":
            rolled = self._roll_back_if_ruined()
            if rolled:
                self._event("rollback", self._exp.step_count, to_step=self._checkpoint["step"])
        if self._paused:
            self._paused = False
            self._pause_reason = ""
            self._single = 0
            self._message = ""
            self._halted.clear()
            if self._status == "paused":
                self._status = "running"

    # -- the healthy checkpoint -------------------------------------------------------------
    # A run that explodes is often ruined a step or two before anything is non-finite
    # (a finite loss of 1e29), so "the last finite weights" are no place to resume from.
    # The session keeps one copy of the weights from the last moment training looked
    # healthy; a remedy applied after a non-finite pause starts from there.

    def _checkpoint_now(self) -> None:
        self._checkpoint = self._exp.save_state()
        self._first_loss = None

    def _maybe_checkpoint(self, rec) -> None:
        """Every CHECKPOINT_EVERY steps, keep the weights if training looks healthy."""
        if self._first_loss is None:
            self._first_loss = abs(rec.loss)
        if rec.step % CHECKPOINT_EVERY:
            return
        if rec.loss > HEALTHY_LOSS_FACTOR * max(self._first_loss, 1e-12):
            return
        if any(alert.kind in UNHEALTHY_ALERTS for alert in self.monitor.diagnosis.active()):
            return
        first = self._first_loss
        self._checkpoint = self._exp.save_state()
        self._first_loss = first

    def _roll_back_if_ruined(self) -> str:
        """After a non-finite pause, return to the healthy checkpoint; says what it did."""
        saved = self._checkpoint
        if self._pause_reason != "nonfinite" or saved is None or saved["cfg"] != self._cfg:
            return ""
        self._exp.load_state(saved)
        self.monitor.history.add_marker(self._exp.step_count, f"weights back to step {saved['step']}")
        return f"; the weights went back to the last healthy checkpoint (step {saved['step']})"

    def _keep_before(self, change: str) -> None:
        self.monitor.keep_before(change, self._run)

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
        text = change_text((k, new.get(k)) for k in changed)
        blocked = restart_keys(old, new)
        step = self._exp.step_count
        if not blocked:
            self._keep_before(text)
            rolled = self._roll_back_if_ruined()
            self._exp.reconfigure(new)
            self._cfg = new
            diagnosis = self.monitor.diagnosis
            if not isinstance(diagnosis, NoDiagnoser):  # after a diagnosis failure it stays off
                diagnosis.set_config(new)  # keeps active alerts; they clear when the problem has gone
            self._chunk = 1  # the step time may have changed (batch norm, another activation)
            self.monitor.history.add_marker(step, text)
            self._message = f"applied {text} at step {step:,}; the weights carried over{rolled}"
            self._event("change", step, overrides=plain(overrides), changed=changed, mode="in_place",
                        config=new.to_dict(), rolled_back_to=(self._checkpoint["step"] if rolled else None))
            self._record_prediction()
            self._checkpoint_now()
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
                    needs_fresh_weights=blocked, config=new.to_dict(), layers=[layer.to_dict() for layer in self._exp.layers])
        self._record_prediction()
        self._evaluate()
        self.monitor.history.add_marker(0, f"{text} (fresh weights)")
        self._message = f"applied {text}: {', '.join(setting_label(k) for k in blocked)} needs fresh weights, so training restarted"
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
        cfg = with_next_seed(self._cfg) if next_seed else self._cfg
        step = self._exp.step_count
        text = f"restart (seed {cfg.train.seed})"
        self._keep_before(text)
        self._fresh(cfg)
        self._run += 1
        self._event("restart", step, seed=cfg.train.seed, config=cfg.to_dict())
        self._record_prediction()
        self._evaluate()
        self.monitor.history.add_marker(0, text)
        self._message = f"restarted from a fresh initialisation, seed {cfg.train.seed}"
        self._status = "paused" if self._paused else "running"
        self._after_change()

    def _on_nonfinite(self, rec) -> None:
        """A step produced NaN or Inf (its update was not applied): pause and say where."""
        where = rec.nonfinite_layer or "?"
        self._paused = True
        self._pause_reason = "nonfinite"
        self._single = 0
        self._status = "paused"
        back = self._checkpoint["step"] if self._checkpoint is not None else 0
        self._message = (f"paused at step {rec.step:,}: non-finite values (NaN or Inf) appeared in {where}; "
                         "the update was not applied. A remedy that keeps the weights (c clipping, - a lower "
                         f"learning rate, b batch norm) or space goes back to the last healthy weights (step {back}); "
                         "i (another init) or n starts afresh.")
        self.monitor.journal.step(rec, self._run)
        self._event("nonfinite", rec.step, layer=where)
        self._observe(rec)  # the marker, the diagnosis and its alert events
        self._publish()
        self._halted.set()
