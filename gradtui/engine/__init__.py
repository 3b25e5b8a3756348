"""The training engine: Numba kernels, networks and the Experiment API. Knows nothing of terminals.

``Experiment`` loads on first use, so that importing a light module of this package
(``gradtui.engine.record``, say) does not load Numba and the kernels.
"""

__all__ = ["Experiment", "StepRecord"]


def __getattr__(name: str):
    if name == "Experiment":
        from gradtui.engine.experiment import Experiment

        return Experiment
    if name == "StepRecord":
        from gradtui.engine.record import StepRecord

        return StepRecord
    raise AttributeError(f"module 'gradtui.engine' has no attribute {name!r}")
