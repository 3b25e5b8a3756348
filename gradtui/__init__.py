"""gradtui: see vanishing and exploding gradients live, and fix them with one key."""
from gradtui.config import ConfigError, load_config
__version__ = "0.1.0"
