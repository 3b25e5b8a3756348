"""StepRecord: what one optimiser step measured."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EXTRA = ("time_delta_norm", "forget_gate_mean", "token_spread", "attention_entropy")  # optional arrays
PER_LAYER = ("grad_norm", "delta_norm", "weight_norm", "update_ratio", "act_mean", "act_std", "dead_fraction", "saturation")


def plain_number(value):
    """JSON cannot hold NaN or Inf: floats (NumPy's too) become Python floats, or the strings
    "nan", "inf", "-inf"; anything else is returned as it is."""
    if not isinstance(value, (float, np.floating)):
        return value
    value = float(value)
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


@dataclass
class StepRecord:
    """One step's loss and per-layer statistics (1-D arrays, one entry per layer, input to output).

    ``nonfinite`` is True when the step's loss, gradients or new weights were not finite;
    then the update was not applied and ``nonfinite_layer`` names the first layer
    (input to output) where a non-finite value appeared ("loss" when only the loss was).
    """

    step: int
    loss: float
    grad_norm_total: float
    clipped: bool
    grad_norm: np.ndarray
    delta_norm: np.ndarray
    weight_norm: np.ndarray
    update_ratio: np.ndarray
    act_mean: np.ndarray
    act_std: np.ndarray
    dead_fraction: np.ndarray
    saturation: np.ndarray
    nonfinite: bool = False
    nonfinite_layer: str | None = None
    time_delta_norm: np.ndarray | None = None
    forget_gate_mean: np.ndarray | None = None
    token_spread: np.ndarray | None = None  # Transformers, per block: ||X - 1 xbar^T||_F / ||X||_F
    attention_entropy: np.ndarray | None = None  # Transformers, per block: mean entropy of the attention rows

    def to_dict(self) -> dict:
        """A plain, JSON-ready dict (lists of floats; NaN and Inf as strings)."""
        out = {
            "step": int(self.step),
            "loss": plain_number(self.loss),
            "grad_norm_total": plain_number(self.grad_norm_total),
            "clipped": bool(self.clipped),
            "nonfinite": bool(self.nonfinite),
            "nonfinite_layer": self.nonfinite_layer,
        }
        for name in PER_LAYER:
            out[name] = [plain_number(v) for v in getattr(self, name)]
        for name in EXTRA:
            value = getattr(self, name)
            out[name] = None if value is None else [plain_number(v) for v in value]
        return out
