"""Hysteresis: an alert rises only after its condition held for a run of steps, and clears
only after the condition stayed away for a run of steps, so nothing flickers frame to frame.
"""

from __future__ import annotations


class Hysteresis:
    """Per-key rise/clear counters; O(1) per update, memory bounded by the number of keys.

    >>> h = Hysteresis(rise_steps=3, clear_steps=2)
    >>> [h.update("x", True) for _ in range(3)]
    [None, None, 'raised']

    A condition must hold for ``rise_steps`` *consecutive* observations to rise (one absent
    observation resets the count), and be absent for ``clear_steps`` consecutive observations
    to clear (one present observation resets that count). A condition flipping every other
    step therefore never rises when rise_steps >= 2, and never clears once risen when
    clear_steps >= 2.
    """

    __slots__ = ("rise_steps", "clear_steps", "_on", "_off", "_active")

    def __init__(self, rise_steps: int, clear_steps: int):
        if rise_steps < 1 or clear_steps < 1:
            raise ValueError("rise_steps and clear_steps must be at least 1")
        self.rise_steps = int(rise_steps)
        self.clear_steps = int(clear_steps)
        self._on: dict[str, int] = {}
        self._off: dict[str, int] = {}
        self._active: set[str] = set()

    def update(self, key: str, present: bool, rise_steps: int | None = None) -> str | None:
        """Count one observation; return "raised" or "cleared" when the state flips, else None.

        ``rise_steps`` overrides the default for this key (exploding and non-finite rise faster).
        """
        if present:
            self._off[key] = 0
            if key in self._active:
                return None
            n = self._on.get(key, 0) + 1
            self._on[key] = n
            if n >= (self.rise_steps if rise_steps is None else rise_steps):
                self._active.add(key)
                self._on[key] = 0
                return "raised"
            return None
        self._on[key] = 0
        if key not in self._active:
            return None
        n = self._off.get(key, 0) + 1
        self._off[key] = n
        if n >= self.clear_steps:
            self._active.discard(key)
            self._off[key] = 0
            return "cleared"
        return None

    def is_active(self, key: str) -> bool:
        return key in self._active

    def active(self) -> frozenset:
        return frozenset(self._active)
