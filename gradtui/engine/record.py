"""StepRecord: what one optimiser step measured, and the one declaration of its statistics.

:data:`STATISTICS` lists every per-layer and per-time-step statistic once, with its
meaning and unit; the engine's statistics tables, the history, the record writer and
reader, the export and docs/record-format.md all derive their lists from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Statistic:
    """One statistic of a step: ``per`` is "layer" (one value per layer, input to output),
    "time" (one value per input time step) or "block" (one value per Transformer block); ``filled_by`` says which pass measures it
    ("forward" for the forward and backward pass, "update" for the gradient norms and the
    optimiser step); ``optional`` statistics exist only for some models."""

    name: str
    meaning: str
    unit: str
    per: str = "layer"
    filled_by: str = "forward"
    optional: bool = False


STATISTICS: tuple[Statistic, ...] = (
    Statistic("act_mean", "mean of the layer's activation output over the batch and units", "activation units"),
    Statistic("act_std", "standard deviation of the layer's activation output over the batch and units", "activation units"),
    Statistic("dead_fraction", "share of units whose activation derivative is 0 for every example of the batch", "fraction 0-1"),
    Statistic("saturation", "share of (example, unit) pairs in the activation's flat tails (derivative below 5% of its maximum)", "fraction 0-1"),
    Statistic("delta_norm", "L2 norm of dL/dz, the back-propagated error at the layer's pre-activations, summed over the batch (= the bias gradient's norm; the loss is a batch mean)", "loss per unit"),
    Statistic("grad_norm", "L2 norm of the gradient of the loss with respect to the layer's parameters", "loss per parameter unit", filled_by="update"),
    Statistic("weight_norm", "L2 norm of the layer's parameters after the step", "parameter units", filled_by="update"),
    Statistic("update_ratio", "norm of this step's parameter change / norm of the parameters", "ratio", filled_by="update"),
    Statistic("time_delta_norm", "norm of dL/dh_t at each input time step t = 1..T (recurrent models)", "loss per unit", per="time", optional=True),
    Statistic("forget_gate_mean", "mean forget-gate activation per layer (LSTM)", "fraction 0-1", optional=True),
    Statistic("token_spread", "spread of the token representations around their mean at each Transformer block's output, ‖X − 1x̄ᵀ‖_F / ‖X‖_F over the sequence's positions, averaged over the batch (0: every position carries the same vector, rank collapse)", "fraction 0-1", per="block", optional=True),
    Statistic("attention_entropy", "mean entropy of the attention rows of each Transformer block, averaged over heads, positions and the batch (log T: uniform attention, 0: each position attends to one)", "nats", per="block", optional=True),
)

STATISTIC = {s.name: s for s in STATISTICS}
PER_LAYER = tuple(s.name for s in STATISTICS if s.per == "layer" and not s.optional)
OPTIONAL = tuple(s.name for s in STATISTICS if s.optional)
FORWARD_STATS = tuple(s.name for s in STATISTICS if s.filled_by == "forward" and not s.optional)
UPDATE_STATS = tuple(s.name for s in STATISTICS if s.filled_by == "update")
SCALARS = ("step", "loss", "grad_norm_total", "clipped", "nonfinite", "nonfinite_layer")


def plain_number(value):
    """JSON cannot hold NaN or Inf: floats (NumPy's too) become Python floats, or the strings
    "nan", "inf", "-inf"; anything else is returned as it is."""
    if not isinstance(value, (float, np.floating)):
        return value
    value = float(value)
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def number(value) -> float:
    """A float from a record value: a number, or one of the strings "nan", "inf", "-inf"."""
    if isinstance(value, str):
        if value not in _NONFINITE:
            raise ValueError(f"{value!r} is not a number (numbers, or the strings \"nan\", \"inf\", \"-inf\")")
        return _NONFINITE[value]
    if value is None:
        return math.nan
    return float(value)


def _array(values) -> np.ndarray:
    return np.array([number(v) for v in values], dtype=np.float64)


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
        for name in OPTIONAL:
            value = getattr(self, name)
            out[name] = None if value is None else [plain_number(v) for v in value]
        return out

    @classmethod
    def from_dict(cls, data: dict, n_layers: int | None = None) -> "StepRecord":
        """A StepRecord from a step line (or :meth:`to_dict`), the inverse of ``to_dict``.

        Required: ``step``, ``loss`` and every per-layer statistic the record format marks
        required; ``grad_norm_total`` defaults to the L2 norm of ``grad_norm``, ``clipped`` and
        ``nonfinite`` to false. Raises ValueError naming the missing or malformed field.
        """
        try:
            step, loss = int(data["step"]), number(data["loss"])
        except KeyError as err:
            raise ValueError(f"a step line needs {err.args[0]!r}") from None
        except (TypeError, ValueError) as err:
            raise ValueError(f"step {data.get('step')!r}: {err}") from None
        arrays = {}
        for name in PER_LAYER:
            values = data.get(name)
            if values is None:
                if name in ("grad_norm",):
                    raise ValueError(f"step {step}: the step line has no {name!r} (one number per layer)")
                arrays[name] = None
                continue
            try:
                arrays[name] = _array(values)
            except (TypeError, ValueError) as err:
                raise ValueError(f"step {step}: {name} must be a list of numbers, one per layer ({err})") from None
        n = n_layers if n_layers is not None else len(arrays["grad_norm"])
        for name, values in arrays.items():
            if values is None:
                arrays[name] = np.full(n, math.nan)
            elif len(values) != n:
                raise ValueError(f"step {step}: {name} has {len(values)} values for {n} layers")
        optional = {name: None if data.get(name) is None else _array(data[name]) for name in OPTIONAL}
        total = data.get("grad_norm_total")
        grad_total = number(total) if total is not None else float(np.sqrt(np.sum(arrays["grad_norm"] ** 2)))
        return cls(step=step, loss=loss, grad_norm_total=grad_total, clipped=bool(data.get("clipped", False)),
                   nonfinite=bool(data.get("nonfinite", False)), nonfinite_layer=data.get("nonfinite_layer"),
                   **arrays, **optional)


LAYER_KINDS = ("linear", "conv", "recurrent", "attention", "norm", "embedding", "output", "other")


@dataclass(frozen=True)
class Layer:
    """One row of a record's layer table: what is known about a layer, input to output.

    ``kind`` is one of :data:`LAYER_KINDS`; ``activation`` the nonlinearity after it (None
    when unknown or none); ``fan_in``/``fan_out`` the inputs and outputs of one unit (None
    when unknown); ``cell`` the recurrent cell (rnn, lstm, gru) of a recurrent layer.
    """

    name: str
    kind: str = "other"
    activation: str | None = None
    fan_in: int | None = None
    fan_out: int | None = None
    cell: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, data) -> "Layer":
        """From a layer-table entry (a dict with at least ``name``) or a bare name (format 1)."""
        if isinstance(data, str):
            return cls(name=data)
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ValueError(f"a layer entry needs a \"name\" string, not {data!r}")
        kind = data.get("kind", "other")
        if kind not in LAYER_KINDS:
            kind = "other"
        ints = {k: int(data[k]) for k in ("fan_in", "fan_out") if isinstance(data.get(k), (int, float))}
        return cls(name=data["name"], kind=kind, activation=data.get("activation"), cell=data.get("cell"), **ints)
