"""The Textual interface. ``run_app(cfg, fps)`` opens it and returns the exit code.

Importing this package does not import Textual or the engine; ``run_app`` does.
"""

from __future__ import annotations

import sys

# How long (s) a thread may hold the GIL while another waits for it (CPython's default is 5 ms).
# The training worker needs the GIL briefly after each kernel call; when a frame is being drawn
# it waits until the interface thread hands it over. Measured with the interface open on
# vanishing-sigmoid (README, bench_ui): the worker spent 4-6% of its time waiting at 5 ms and
# 2% at 1 ms (chunks of 25 ms). An earlier trial found that 0.1 ms halved training: switches cost too.
SWITCH_INTERVAL = 0.001


def run_app(cfg, fps: float = 10, source_factory=None, source=None, name: str | None = None) -> int:
    """Open the interface on a validated Config (the live trainer) or on another ``source``
    (a replayed or followed record); block until the user quits; return the exit code."""
    from gradtui.ui.app import GradApp

    app = GradApp(cfg, fps=fps, source_factory=source_factory, source=source, name=name)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        result = app.run()
    finally:
        sys.setswitchinterval(previous)
    if app.return_code not in (None, 0):
        return int(app.return_code)
    return int(result or 0)


__all__ = ["run_app"]
