"""What viewers see of a run, whichever source feeds it: the bounded history, the diagnosis,
the journal (events, alerts, the record being written) and the snapshots readers poll.

Sources (gradtui.session for the live trainer, gradtui.sources for records) feed a
:class:`Monitor` with StepRecords and events; the interface and `gradtui run` read its
:class:`Snapshot`.
"""

from gradtui.monitor.history import History
from gradtui.monitor.journal import Journal
from gradtui.monitor.monitor import Monitor, layer_profile, step_values
from gradtui.monitor.snapshot import HistoryView, LayerSeries, Snapshot

__all__ = ["History", "HistoryView", "Journal", "LayerSeries", "Monitor", "Snapshot", "layer_profile", "step_values"]
