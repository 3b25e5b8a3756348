"""The Textual interface. ``run_app(cfg, fps)`` opens it and returns the exit code.

Importing this package does not import Textual or the engine; ``run_app`` does.
"""

from __future__ import annotations


def run_app(cfg, fps: float = 10, source_factory=None, source=None, name: str | None = None) -> int:
    """Open the interface on a validated Config (the live trainer) or on another ``source``
    (a replayed or followed record); block until the user quits; return the exit code."""
    from gradtui.ui.app import GradApp

    app = GradApp(cfg, fps=fps, source_factory=source_factory, source=source, name=name)
    result = app.run()
    if app.return_code not in (None, 0):
        return int(app.return_code)
    return int(result or 0)


__all__ = ["run_app"]
