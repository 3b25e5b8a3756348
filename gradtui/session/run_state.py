"""The live run's one status, and the only code that changes it.

A live run is in one of these states (``status``):

* ``compiling``: building the network (and, on a cold cache, its kernels);
* ``running``: taking steps;
* ``paused``: waiting for the user; ``pause_reason`` says why, ``"user"`` or
  ``"nonfinite"`` (a step produced NaN or Inf and its update was not applied);
* ``finished``: ``max_steps`` reached (a change or a restart may run it again);
* ``stopped`` / ``error``: the worker has left.

``message`` is the one line a viewer shows beside it. ``halted`` is set while the run
waits for someone (finished, stopped, failed, or paused on a non-finite step): what
:meth:`gradtui.session.Session.wait` waits for. Every transition is a method here, so
the rules (a single step while paused, the pause a change leaves behind, which reason
an ended run gives its record) are written once.
"""

from __future__ import annotations

import threading

COMPILING = "compiling the kernels (first start only; later starts load them from the cache)"
SINGLE_STEP = "paused: s takes one step, space resumes"  # shown by the interface only


class RunState:
    """See the module docstring. Changed by the worker thread only; read by the publisher."""

    def __init__(self, start_paused: bool = False):
        self.status = "compiling"
        self.message = COMPILING
        self.paused = bool(start_paused)
        self.pause_reason = "user" if start_paused else ""
        self.steps_owed = 0  # single steps asked for while paused
        self.halted = threading.Event()
        self.error_traceback = ""

    @property
    def nonfinite_pause(self) -> bool:
        return self.paused and self.pause_reason == "nonfinite"

    @property
    def shown_pause_reason(self) -> str:
        """What a snapshot says about the pause ("" while not paused)."""
        return self.pause_reason if self.paused else ""

    def _moving_status(self) -> str:
        return "paused" if self.paused else "running"

    # -- the start -------------------------------------------------------------------------------
    def begin(self, keep_message: bool = False) -> None:
        """The network is built and evaluated: ready for the first step. ``keep_message``
        keeps a message that must stay (the record could not be written)."""
        if not keep_message:
            self.message = "paused before the first step" if self.paused else ""
        self.status = self._moving_status()

    # -- the user's commands ---------------------------------------------------------------------
    def pause(self) -> None:
        if not self.paused:
            self.paused = True
            self.pause_reason = "user"
            self.steps_owed = 0
            self.status = "paused"
            self.message = "paused"

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self.pause_reason = ""
            self.steps_owed = 0
            self.message = ""
            self.halted.clear()
            if self.status == "paused":
                self.status = "running"

    def toggle(self) -> None:
        if self.paused:
            self.resume()
        else:
            self.pause()

    def ask_one_step(self) -> None:
        """While paused: one more step is owed. While running: pause."""
        if self.paused:
            self.steps_owed += 1
        else:
            self.pause()

    # -- the worker's loop -----------------------------------------------------------------------
    def must_wait(self, finished: bool) -> bool:
        """Whether the worker waits instead of stepping (``finished``: max_steps reached)."""
        return finished or (self.paused and self.steps_owed <= 0)

    def settle_wait(self, finished: bool, step: int) -> bool:
        """Before waiting: settle the status and ``halted``; True when the status changed."""
        status = "finished" if finished and not self.nonfinite_pause else "paused"
        changed = status != self.status
        if changed:
            self.status = status
            if status == "finished":
                self.message = f"finished {step} steps"
        if status == "finished" or self.nonfinite_pause:
            self.halted.set()
        return changed

    def take_one_step(self) -> bool:
        """Before a step: True when it is a single step taken while paused."""
        if not self.paused:
            return False
        self.steps_owed -= 1
        self.message = SINGLE_STEP
        return True

    def stepped(self, single: bool) -> None:
        """After a finite chunk of steps."""
        if self.status != "running" and not single:
            self.status = "running"

    def pause_on_nonfinite(self, message: str) -> None:
        self.paused = True
        self.pause_reason = "nonfinite"
        self.steps_owed = 0
        self.status = "paused"
        self.message = message

    # -- changes and restarts ----------------------------------------------------------------------
    def rebuilding(self, message: str) -> str:
        """A change needs a new network: status "compiling" until :meth:`rebuilt`. Returns
        the status to go back to if building fails."""
        before = self.status
        self.status = "compiling"
        self.message = message
        return before

    def rebuilt(self) -> None:
        self.status = self._moving_status()

    def after_change(self, more_steps_allowed: bool) -> None:
        """A change or restart leaves a non-finite pause an ordinary one (resuming is up to
        the user); a finished run with steps left to take moves again."""
        if self.pause_reason == "nonfinite":
            self.pause_reason = "user"
            self.halted.clear()
        if more_steps_allowed:
            if self.status == "finished":
                self.status = self._moving_status()
            self.halted.clear()

    # -- the end -------------------------------------------------------------------------------
    def fail(self, err: BaseException, traceback_text: str) -> None:
        self.error_traceback = traceback_text
        self.status = "error"
        self.message = f"training failed: {type(err).__name__}: {err}"

    def end(self, reason: str) -> str:
        """The worker leaves; returns the reason its record's end line gives ("stopped" is
        refined to "finished" or "nonfinite" when that is why the run was waiting)."""
        if reason == "stopped":
            if self.status == "finished":
                reason = "finished"
            elif self.pause_reason == "nonfinite":
                reason = "nonfinite"
            self.status = "stopped"
        return reason
