"""The training engine: Numba kernels, networks and the Experiment API. Knows nothing of terminals."""

from gradtui.engine.experiment import Experiment
from gradtui.engine.record import StepRecord

__all__ = ["Experiment", "StepRecord"]
