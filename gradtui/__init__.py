"""gradtui: see vanishing and exploding gradients live, and fix them with one key.

>>> import gradtui
>>> cfg = gradtui.load_config("vanishing-sigmoid").with_overrides({"model.depth": 30})
>>> exp = gradtui.Experiment(cfg)
>>> rec = exp.step()

Names load on first use: ``import gradtui`` itself loads nothing, so the command line
starts at once, and ``gradtui presets`` and ``gradtui check`` never load the engine
(NumPy's kernels, Numba and its compiled code).
"""

import importlib

__version__ = "0.1.0"
__all__ = ["Config", "ConfigError", "Experiment", "StepRecord", "load_config", "preset_names", "read_record", "__version__"]

_HOMES = {
    "Config": "gradtui.config",
    "ConfigError": "gradtui.config",
    "load_config": "gradtui.config",
    "preset_names": "gradtui.config",
    "read_record": "gradtui.record_read",
    "Experiment": "gradtui.engine.experiment",
    "StepRecord": "gradtui.engine.record",
}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'gradtui' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_HOMES))
