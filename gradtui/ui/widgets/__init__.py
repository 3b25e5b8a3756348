"""The interface's widgets, one per module; each takes plain values from a Snapshot via ``show``."""

from gradtui.ui.widgets.alerts import AlertsPanel
from gradtui.ui.widgets.gradient_bars import GradientBars
from gradtui.ui.widgets.header import StatusHeader
from gradtui.ui.widgets.keybar import KeyBar
from gradtui.ui.widgets.loss_plot import LossPlot
from gradtui.ui.widgets.mitigations import MitigationsPanel
from gradtui.ui.widgets.weights import WeightPanel

__all__ = ["AlertsPanel", "GradientBars", "KeyBar", "LossPlot", "MitigationsPanel", "StatusHeader", "WeightPanel"]
