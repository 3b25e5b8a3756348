"""The Textual interface. ``run_app(cfg, fps)`` opens it and returns the exit code.

Importing this package does not import Textual or the engine; ``run_app`` does.
"""

from __future__ import annotations


def run_app(cfg, fps: float = 10, session_factory=None) -> int:
    """Open the interface on a validated Config; block until the user quits; return the exit code."""
    from gradtui.ui.app import GradApp

    app = GradApp(cfg, fps=fps, session_factory=session_factory)
    result = app.run()
    if app.return_code not in (None, 0):
        return int(app.return_code)
    return int(result or 0)


__all__ = ["run_app"]
