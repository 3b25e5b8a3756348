"""The healthy checkpoint: the weights from the last moment a live run looked healthy.

A run that explodes is often ruined a step or two before anything is non-finite (a
finite loss of 1e29), so "the last finite weights" are no place to resume from. Every
:data:`CHECKPOINT_EVERY` steps the session keeps one copy of the Experiment's state if the
loss is below :data:`HEALTHY_LOSS_FACTOR` times the run's first loss and no exploding or
non-finite alert is active; a remedy applied after a non-finite pause starts from there.
"""

from __future__ import annotations

CHECKPOINT_EVERY = 50  # steps between healthy checkpoints
HEALTHY_LOSS_FACTOR = 10.0  # a checkpoint needs the loss below this multiple of the run's first loss
UNHEALTHY_ALERTS = ("exploding", "nonfinite")


class HealthyCheckpoint:
    """One saved state (``saved``: Experiment.save_state(), or None) and the first loss it is
    judged against."""

    def __init__(self):
        self.saved = None
        self._first_loss = None

    @property
    def step(self) -> int:
        return self.saved["step"] if self.saved is not None else 0

    def take(self, exp) -> None:
        """Keep exp's state now (a new network, or a change that reset the baseline)."""
        self.saved = exp.save_state()
        self._first_loss = None

    def consider(self, rec, exp, diagnosis) -> None:
        """After a finite step: keep exp's state if this is a checkpoint step and the run is healthy."""
        if self._first_loss is None:
            self._first_loss = abs(rec.loss)
        if rec.step % CHECKPOINT_EVERY:
            return
        if rec.loss > HEALTHY_LOSS_FACTOR * max(self._first_loss, 1e-12):
            return
        if any(alert.kind in UNHEALTHY_ALERTS for alert in diagnosis.active()):
            return
        self.saved = exp.save_state()

    def restore(self, exp, cfg) -> bool:
        """Load the saved state into exp if it was taken under cfg; True when it did."""
        if self.saved is None or self.saved["cfg"] != cfg:
            return False
        exp.load_state(self.saved)
        return True
