"""Which config changes carry the weights over and which need a fresh start.

A change to any key outside CARRY_OVER_KEYS (depth, width, init scheme, cell type,
task, seed, number type, learning-rate schedule and warmup, ...) changes the parameters' shapes or their initial
distribution (or, for the schedule and warmup, how training starts), so it restarts training
from a fresh initialisation. The others apply
mid-run: the weights keep their values bit for bit.
"""

from __future__ import annotations

from gradtui.config.schema import key_specs

CARRY_OVER_KEYS = frozenset({
    "model.activation", "model.leaky_slope", "model.prelu_init", "model.elu_alpha",
    "model.batchnorm", "model.residual", "model.norm", "model.causal",
    "train.optimizer", "train.lr", "train.momentum", "train.weight_decay",
    "train.clip", "train.clip_threshold", "train.batch_size", "train.steps", "train.eval_every",
})


def changed_keys(old, new) -> list[str]:
    """Dotted keys whose values differ between two configs."""
    return [k for k in key_specs() if old.get(k) != new.get(k)]


def restart_keys(old, new) -> list[str]:
    """Changed keys that need fresh weights; empty when the change can apply in place."""
    return [k for k in changed_keys(old, new) if k not in CARRY_OVER_KEYS and not k.startswith("alerts.")]
