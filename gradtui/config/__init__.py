"""Configuration: the schema, validation, and preset loading."""

from gradtui.config.loader import DEFAULT_PRESET, load_config, parse_assignments, preset_names
from gradtui.config.model import Config, ConfigError, build_config
from gradtui.config.schema import key_specs

__all__ = [
    "DEFAULT_PRESET",
    "Config",
    "ConfigError",
    "build_config",
    "key_specs",
    "load_config",
    "parse_assignments",
    "preset_names",
]
