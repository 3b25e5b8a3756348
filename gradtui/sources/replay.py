"""Replay: a finished record as a source, played back at a chosen speed.

The position is a line of the record (after the header); the monitor holds what the
live run showed after that line. Moving forward feeds the lines in between. Moving back
starts again from the nearest keyframe before the target (the monitor and feeder as
they were at that line, pickled while playing forward: at most :data:`MAX_KEYFRAMES`,
at least :data:`MIN_KEYFRAME_LINES` lines apart, about 2 MB each) and feeds forward from
there, so a step back costs at most one keyframe interval, not the whole record. The
record stays on disk (:class:`~gradtui.record_read.RecordIndex` keeps a few bytes per
line), so memory stays bounded whatever its length. Nothing runs in a thread:
:meth:`ReplaySource.snapshot`, polled by the interface, advances the playback by the time
elapsed since the last call times the speed.
"""

from __future__ import annotations

import bisect
import pickle
import threading
import time
from pathlib import Path

from gradtui.monitor import Monitor
from gradtui.record_read import RecordIndex
from gradtui.sources.feed import RecordFeeder
from gradtui.sources.protocol import REPLAY

SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)  # step lines per second
DEFAULT_SPEED = 100
MAX_KEYFRAMES = 24
MIN_KEYFRAME_LINES = 250


def position_text(step: int, last: int, run: int = 0, runs: int = 1) -> str:
    """"step 1,200 / 3,000" (with the run when the record holds several)."""
    text = f"step {step:,} / {last:,}"
    return f"run {run + 1} of {runs} · {text}" if runs > 1 else text


class ReplaySource:
    """Plays a record back; see the module docstring. ``start_paused`` waits for toggle_pause()."""

    capabilities = REPLAY

    def __init__(self, path: str | Path, speed: int = DEFAULT_SPEED, start_paused: bool = False,
                 history_capacity: int = 2000):
        """Index the record at ``path`` (RecordError when it cannot be read or is damaged)."""
        self.record = RecordIndex(path)
        self.name = Path(self.record.path).name
        self._capacity = history_capacity
        self._lines = self.record
        self._step_at = self.record.step_lines  # line index of each step line
        self._runs = 1 + max(self.record.runs, default=0)
        self._last_step = max(self.record.steps, default=0)
        self._speed = speed if speed in SPEEDS else DEFAULT_SPEED
        self._playing = not start_paused
        self._lock = threading.Lock()
        self._clock = time.monotonic()
        self._credit = 0.0
        self._keyframes: dict[int, bytes] = {}  # line position -> pickled (monitor, feeder)
        self._keyframe_every = max(MIN_KEYFRAME_LINES, -(-len(self._lines) // MAX_KEYFRAMES))
        self._reset()
        self._started = False
        self._snapshot = self._publish()

    # -- the Source interface -------------------------------------------------------------
    @property
    def pending_config(self):
        return self._feeder.config

    @property
    def config(self):
        return self._feeder.config

    def start(self) -> "ReplaySource":
        self._started = True
        self._clock = time.monotonic()
        return self

    def stop(self, timeout: float = 1.0) -> bool:
        self._playing = False
        self.record.close()
        return True

    def snapshot(self):
        """The state at the current position, after advancing a playing replay."""
        with self._lock:
            if self._playing and self._started:
                now = time.monotonic()
                self._credit += (now - self._clock) * self._speed
                self._clock = now
                whole = int(self._credit)
                if whole:
                    self._credit -= whole
                    self._forward(whole)
                    self._snapshot = self._publish()
            return self._snapshot

    def toggle_pause(self) -> None:
        with self._lock:
            if not self._playing and self._at_end():
                self._seek_steps(0)
            self._playing = not self._playing
            self._clock, self._credit = time.monotonic(), 0.0
            self._snapshot = self._publish()

    def step_once(self) -> None:
        self.seek(1)

    def seek(self, delta: int) -> None:
        """Move ``delta`` step lines forward (or back, when negative), and pause."""
        with self._lock:
            self._playing = False
            self._seek_steps(self._steps_done() + delta)
            self._snapshot = self._publish()

    def seek_to(self, index: int) -> None:
        """Go to the ``index``-th step line (0 = before the first; -1 = the end), and pause."""
        with self._lock:
            self._playing = False
            self._seek_steps(len(self._step_at) if index < 0 else index)
            self._snapshot = self._publish()

    def seek_step(self, step: int, run: int | None = None) -> None:
        """Go to the step line of this step (of the last run holding it, or of ``run``), and pause."""
        target = None
        for n, (s, r) in enumerate(zip(self.record.steps, self.record.runs)):
            if s == step and (run is None or r == run):
                target = n + 1
        if target is None:
            raise ValueError(f"the record has no step {step}")
        self.seek_to(target)

    def faster(self, factor: int) -> None:
        """One speed up (factor 1) or down (-1) in SPEEDS."""
        with self._lock:
            i = SPEEDS.index(self._speed)
            self._speed = SPEEDS[max(0, min(len(SPEEDS) - 1, i + factor))]
            self._snapshot = self._publish()

    @property
    def speed(self) -> int:
        return self._speed

    def export(self, directory) -> str:
        return self._monitor.journal.export(self._snapshot, directory)

    # -- playback -------------------------------------------------------------------------
    def _reset(self) -> None:
        self._monitor = Monitor(self._capacity)
        self._feeder = RecordFeeder(self.record.header, self._monitor, self.name)
        self._pos = 0  # lines fed

    def _steps_done(self) -> int:
        return bisect.bisect_left(self._step_at, self._pos)

    def _at_end(self) -> bool:
        return self._pos >= len(self._lines)

    def _forward(self, steps: int) -> None:
        """Feed lines until ``steps`` more step lines were fed (and the events after the last)."""
        lines = self._lines
        kinds = lines.kinds
        while self._pos < len(lines):
            if kinds[self._pos] == 0:  # a step line
                if steps <= 0:
                    break
                steps -= 1
            kind, obj = lines.line(self._pos)
            self._feed(kind, obj)
            self._pos += 1
            if self._pos % self._keyframe_every == 0 and self._pos not in self._keyframes:
                self._keyframes[self._pos] = pickle.dumps((self._monitor, self._feeder), protocol=pickle.HIGHEST_PROTOCOL)
            if kind == "step" and self._feeder.nonfinite:
                self._playing = False  # the live run paused here too
        if self._at_end():
            self._playing = False

    def _feed(self, kind: str, obj: dict) -> None:
        if kind == "header":  # another run written into the same file
            self._monitor = Monitor(self._capacity)
            self._feeder = RecordFeeder(obj, self._monitor, self.name)
        else:
            self._feeder.feed(kind, obj)

    def _seek_steps(self, target: int) -> None:
        target = max(0, min(target, len(self._step_at)))
        done = self._steps_done()
        if target < done:
            self._restore_before(self._step_at[target])
            done = self._steps_done()
        self._forward(target - done)

    def _restore_before(self, line: int) -> None:
        """Go back to the last keyframe at or before ``line`` (or to the record's start)."""
        best = max((pos for pos in self._keyframes if pos <= line), default=0)
        if best == 0:
            self._reset()
            return
        self._monitor, self._feeder = pickle.loads(self._keyframes[best])
        self._pos = best

    def _publish(self):
        f = self._feeder
        if self._at_end():
            status = "finished"
        else:
            status = "running" if self._playing else "paused"
        where = position_text(f.step, self._last_step, f.run, self._runs)
        state = "playing" if self._playing else ("end of the record" if self._at_end() else "paused")
        message = f"{state} at {self._speed} steps/s (space, ←/→, [ ], home/end)"
        if f.ended and self._at_end():
            message += f" · the run ended ({f.ended})"
        if f.problem:
            message += f" · {f.problem}"
        return self._monitor.publish(
            status=status, step=f.step, steps_per_second=float(self._speed if self._playing else 0),
            config=f.config, message=message, pause_reason="nonfinite" if f.nonfinite else "",
            run=f.run, source=self.capabilities.kind, position=where)
