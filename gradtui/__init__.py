"""gradtui: see vanishing and exploding gradients live, and fix them with one key.

>>> import gradtui
>>> cfg = gradtui.load_config("vanishing-sigmoid").with_overrides({"model.depth": 30})
>>> exp = gradtui.Experiment(cfg)
>>> rec = exp.step()
"""

from gradtui.config import Config, ConfigError, load_config, preset_names
from gradtui.engine import Experiment, StepRecord
from gradtui.record import read_record

__version__ = "0.1.0"
__all__ = ["Config", "ConfigError", "Experiment", "StepRecord", "load_config", "preset_names", "read_record", "__version__"]
