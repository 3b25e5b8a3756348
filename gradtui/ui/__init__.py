"""The Textual interface. ``run_app(cfg, fps)`` opens it and returns the exit code.

Importing this package does not import Textual or the engine; ``run_app`` does.
"""

from __future__ import annotations


SWITCH_INTERVAL = 0.0005  # seconds (Python's default is 0.005)


def run_app(cfg, fps: float = 10, session_factory=None) -> int:
    """Open the interface on a validated Config; block until the user quits; return the exit code."""
    import sys

    from gradtui.ui.app import GradApp

    # The training worker releases the GIL inside every Numba call and must take it back
    # after each one; with the default 5 ms switch interval a busy interface thread makes
    # it wait up to 5 ms each time. A shorter interval hands the GIL back sooner.
    sys.setswitchinterval(SWITCH_INTERVAL)
    app = GradApp(cfg, fps=fps, session_factory=session_factory)
    result = app.run()
    if app.return_code not in (None, 0):
        return int(app.return_code)
    return int(result or 0)


__all__ = ["run_app"]
