"""The live session: training in a worker thread, commands between steps, snapshots for readers."""

from gradtui.session.history import History
from gradtui.session.session import Session
from gradtui.session.snapshot import HistoryView, LayerSeries, Snapshot

__all__ = ["History", "HistoryView", "LayerSeries", "Session", "Snapshot"]
