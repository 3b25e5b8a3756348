"""The command side of a session: how other threads steer the worker without waiting for it.

Any thread submits commands (pause, resume, step, apply, restart ...) to a
:class:`CommandQueue`; the worker drains it between steps, in order, none lost or
doubled. Two counters (submitted, applied) under a condition variable let a caller
block until everything it sent has been applied. The queue also keeps the config as
it will be once every queued change is applied, so a change can be validated at
once, in the caller's thread, and carries the stop request and the wake-up event.
"""

from __future__ import annotations

import collections
import threading
import time


class CommandQueue:
    """Commands from any thread to the session's worker, applied between steps.

    ``pending`` is the deque itself: the worker's loop tests it for emptiness on every
    step, the cheapest check there is. ``cfg`` is the config the queue starts from.
    """

    def __init__(self, cfg):
        self.pending: collections.deque = collections.deque()
        self.submitted = 0
        self.applied = 0
        self.stop_requested = False
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._pending_cfg = cfg  # the config after every queued change, to validate apply() at once
        self._pending_lock = threading.Lock()

    @property
    def pending_config(self):
        """The config after every queued change (validated when it was queued)."""
        with self._pending_lock:
            return self._pending_cfg

    # -- any thread ---------------------------------------------------------------------------
    def submit(self, name: str, arg=None) -> None:
        """Queue one command and wake the worker if it idles."""
        with self._cond:
            self.submitted += 1
        self.pending.append((name, arg))
        self._wake.set()

    def submit_change(self, name: str, arg, update=None) -> None:
        """Queue a command that changes the config: ``update(cfg)`` gives the config after
        it from the config after the commands already queued (it may raise ConfigError,
        and then nothing is queued). ``update=None`` leaves the config as it is."""
        with self._pending_lock:
            if update is not None:
                self._pending_cfg = update(self._pending_cfg)
            self.submit(name, arg)

    def request_stop(self) -> None:
        """Ask the worker to leave between steps (it stops draining commands too)."""
        self.stop_requested = True
        self._wake.set()

    def wait_applied(self, worker_alive, timeout: float | None = None) -> bool:
        """Block until every command submitted so far has been applied; False on timeout
        or when ``worker_alive()`` says there is no worker left to apply them."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self.submitted
            while self.applied < target:
                if not worker_alive():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.1 if remaining is None else min(remaining, 0.1))
        return True

    # -- the worker ---------------------------------------------------------------------------
    def drain(self, handle) -> None:
        """Apply the queued commands in order with ``handle(name, arg)``, counting each one
        as applied even when the handler raises; stops early when a stop was requested."""
        pending = self.pending
        while pending and not self.stop_requested:
            name, arg = pending.popleft()
            try:
                handle(name, arg)
            finally:
                with self._cond:
                    self.applied += 1
                    self._cond.notify_all()

    def settle(self, cfg) -> None:
        """After a drain: with nothing queued, the config to validate against is the worker's
        (this drops changes the worker refused)."""
        with self._pending_lock:
            if not self.pending:
                self._pending_cfg = cfg

    def idle(self, timeout: float) -> None:
        """Sleep until a command or a stop request arrives, at most ``timeout`` seconds."""
        self._wake.wait(timeout)
        self._wake.clear()

    def release_waiters(self) -> None:
        """Wake every wait_applied() caller (the worker is leaving)."""
        with self._cond:
            self._cond.notify_all()
