"""The live session: gradtui's own trainer as a source of steps (training in a worker thread,
commands between steps), feeding a :class:`~gradtui.monitor.Monitor`."""

from gradtui.session.session import Session

__all__ = ["Session"]
