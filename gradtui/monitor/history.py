"""Bounded history with decimation: memory stays flat however long the run.

Each series keeps at most ``capacity`` points. Points are taken every ``stride``
steps; when a series fills up, every second point is dropped and the stride
doubles (1, 2, 4, 8 ...), so the whole run stays visible at an even spacing while
the number of points never exceeds the capacity.

Values are stored as Python floats and per-point tuples (never NumPy arrays), so
building a :class:`~gradtui.monitor.snapshot.HistoryView` only copies references;
the view is cached and rebuilt only after something changed.
"""

from __future__ import annotations

from gradtui.engine.record import OPTIONAL, PER_LAYER
from gradtui.monitor.snapshot import HistoryView

STORED = PER_LAYER + OPTIONAL  # every statistic of the step schema (optional ones as () when absent)


class Decimator:
    """Decides which indices of a stream to keep: every ``stride``-th, stride doubling when full."""

    __slots__ = ("capacity", "stride", "_countdown")

    def __init__(self, capacity: int):
        if capacity < 2:
            raise ValueError(f"history capacity must be at least 2, not {capacity}")
        self.capacity = capacity
        self.stride = 1
        self._countdown = 0

    def take(self) -> bool:
        """True when the next point of the stream should be stored."""
        if self._countdown:
            self._countdown -= 1
            return False
        self._countdown = self.stride - 1
        return True

    def halve(self, kept_last: bool) -> None:
        """Called right after a take(), once the caller kept only every second stored point
        (positions 0, 2, 4 ...); ``kept_last`` says whether the point just taken survived."""
        old = self.stride
        self.stride *= 2
        # the next kept point is one new stride after the last surviving one
        self._countdown = self.stride - 1 if kept_last else old - 1


class History:
    """Loss, global gradient norm, per-layer statistics and evaluation results of one run.

    Feed it with :meth:`add_step` (a StepRecord) and :meth:`add_eval`; read it with
    :meth:`view`. Not thread-safe by itself: the session's worker is the only writer,
    and readers only ever see the immutable views it publishes.
    """

    def __init__(self, capacity: int = 2000, stats: tuple = STORED):
        self.capacity = int(capacity)
        self.stats = tuple(stats)
        self._steps_dec = Decimator(self.capacity)
        self._eval_dec = Decimator(self.capacity)
        self.clear()

    def clear(self) -> None:
        """Forget everything (a fresh run)."""
        self._steps_dec = Decimator(self.capacity)
        self._eval_dec = Decimator(self.capacity)
        self.steps: list = []
        self.loss: list = []
        self.grad_norm_total: list = []
        self.clipped: list = []
        self.layers: dict[str, list] = {name: [] for name in self.stats}
        self._series = tuple(self.layers.items())
        self.eval_steps: list = []
        self.eval_loss: list = []
        self.eval_accuracy: list = []
        self.markers: list = []
        self.seen = 0  # steps offered, kept or not
        self._view: HistoryView | None = None

    # -- writing ---------------------------------------------------------------------------
    def add_step(self, rec) -> bool:
        """Offer one StepRecord; returns True when it was stored (not decimated away)."""
        self.seen += 1
        if not self._steps_dec.take():
            return False
        self.steps.append(int(rec.step))
        self.loss.append(float(rec.loss))
        self.grad_norm_total.append(float(rec.grad_norm_total))
        self.clipped.append(bool(rec.clipped))
        for name, series in self._series:
            values = getattr(rec, name)
            series.append(() if values is None else tuple(values.tolist()))
        if len(self.steps) >= self.capacity:
            self._halve_steps()
        self._view = None
        return True

    def _halve_steps(self) -> None:
        kept_last = len(self.steps) % 2 == 1
        self.steps[:] = self.steps[::2]
        self.loss[:] = self.loss[::2]
        self.grad_norm_total[:] = self.grad_norm_total[::2]
        self.clipped[:] = self.clipped[::2]
        for series in self.layers.values():
            series[:] = series[::2]
        self._steps_dec.halve(kept_last)

    def add_eval(self, step: int, result: dict) -> None:
        """Record one held-out evaluation ({"loss", "accuracy"?})."""
        if not self._eval_dec.take():
            return
        self.eval_steps.append(int(step))
        self.eval_loss.append(float(result["loss"]))
        self.eval_accuracy.append(float(result.get("accuracy", float("nan"))))
        if len(self.eval_steps) >= self.capacity:
            kept_last = len(self.eval_steps) % 2 == 1
            self.eval_steps[:] = self.eval_steps[::2]
            self.eval_loss[:] = self.eval_loss[::2]
            self.eval_accuracy[:] = self.eval_accuracy[::2]
            self._eval_dec.halve(kept_last)
        self._view = None

    def add_marker(self, step: int, text: str) -> None:
        """Mark a step (a change, a restart, a non-finite step); markers are kept up to ``capacity``."""
        self.markers.append((int(step), str(text)))
        if len(self.markers) > self.capacity:
            del self.markers[0]
        self._view = None

    # -- reading ---------------------------------------------------------------------------
    @property
    def stride(self) -> int:
        """Steps between stored points at the moment."""
        return self._steps_dec.stride

    def __len__(self) -> int:
        return len(self.steps)

    def view(self) -> HistoryView:
        """An immutable view (tuples of floats), cached until the next change."""
        if self._view is None:
            self._view = HistoryView(
                steps=tuple(self.steps),
                loss=tuple(self.loss),
                grad_norm_total=tuple(self.grad_norm_total),
                clipped=tuple(self.clipped),
                eval_steps=tuple(self.eval_steps),
                eval_loss=tuple(self.eval_loss),
                eval_accuracy=tuple(self.eval_accuracy),
                layers={name: tuple(series) for name, series in self.layers.items()},
                markers=tuple(self.markers),
                stride=self.stride,
            )
        return self._view

