"""The configuration schema: every key, its type, default, allowed values and meaning.

This module is the single source of truth for config keys. The loader validates
against it, `gradtui check` prints it, and the README's key table is generated
from it (``python -m gradtui.config.docs``), so the three cannot drift.

A key may apply only to some model kinds (``kinds``) or tasks (``tasks``); setting
it explicitly where it does not apply is a ConfigError rather than a silent no-op.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

MLP_KINDS = ("mlp",)
CNN_KINDS = ("cnn",)
FEEDFORWARD_KINDS = MLP_KINDS + CNN_KINDS
RECURRENT_KINDS = ("rnn", "lstm", "gru")
TRANSFORMER_KINDS = ("transformer",)
KINDS = FEEDFORWARD_KINDS + RECURRENT_KINDS + TRANSFORMER_KINDS

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "linear")
ALL_ACTIVATIONS = ACTIVATIONS + ("gelu",)  # gelu: Transformer MLPs only
RNN_ACTIVATIONS = ("tanh", "relu", "sigmoid")
GATED_ACTIVATIONS = ("tanh",)
TRANSFORMER_ACTIVATIONS = ("relu", "gelu")
NORM_PLACEMENTS = ("post", "pre", "none")
SCHEDULES = ("constant", "linear", "cosine")
INITS = ("standard", "normal", "xavier", "xavier_normal", "he", "he_uniform", "lecun", "orthogonal")
RECURRENT_INITS = ("orthogonal", "identity", "xavier", "normal")
OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop")
CLIP_MODES = ("none", "norm", "value")
DTYPES = ("float32", "float64")

CLASSIFICATION_TASKS = ("spirals", "moons", "circles", "xor")
REGRESSION_TASKS = ("teacher",)
MLP_TASKS = CLASSIFICATION_TASKS + REGRESSION_TASKS
SEQUENCE_TASKS = ("adding", "copy", "sine")
IMAGE_TASKS = ("digits", "shapes")
TOKEN_TASKS = ("sort", "reverse", "recall")  # token sequences for the Transformer
TASKS = MLP_TASKS + IMAGE_TASKS + SEQUENCE_TASKS + TOKEN_TASKS


def key(
    default: Any,
    doc: str,
    *,
    choices: tuple | None = None,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    kinds: tuple | None = None,
    tasks: tuple | None = None,
):
    """Declare one config key: a dataclass field whose metadata is the key's contract."""
    meta = dict(
        doc=doc,
        choices=choices,
        low=low,
        high=high,
        low_open=low_open,
        high_open=high_open,
        kinds=kinds,
        tasks=tasks,
    )
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ModelConfig:
    """The network: kind, size, activation, initialisation and architecture switches."""

    kind: str = key("mlp", "Network kind: a feed-forward MLP, a convolutional net (cnn; a ResNet with model.residual), a recurrent net or a Transformer encoder.", choices=KINDS)
    depth: int = key(20, "Hidden layers (MLP), 3x3 convolutions (CNN), stacked recurrent layers or Transformer blocks.", low=1, high=1000)
    width: int = key(64, "Units per hidden (or recurrent) layer; channels per convolution (CNN); d_model (Transformer).", low=1, high=4096)
    stages: int = key(1, "CNN stages: a stride-2 convolution halves the image between stages (each stage starts at a pair of layers).", low=1, high=8, kinds=CNN_KINDS)
    activation: str = key(
        "tanh",
        "Hidden activation phi. RNNs allow tanh, relu, sigmoid; LSTM and GRU use tanh; Transformer MLPs relu or gelu.",
        choices=ALL_ACTIVATIONS,
    )
    leaky_slope: float = key(0.01, "Negative-side slope of leaky_relu.", low=0.0, high=1.0, high_open=True)
    prelu_init: float = key(0.25, "Initial learnable negative slope of prelu (one per unit).", low=0.0, high=1.0)
    elu_alpha: float = key(1.0, "ELU saturation value alpha: phi(z) = alpha*(exp(z)-1) for z < 0.", low=0.0, low_open=True, high=10.0)
    init: str = key(
        "xavier",
        "Weight initialisation: standard U[-1/sqrt(fan_in), 1/sqrt(fan_in)] (Glorot & Bengio's "
        "'standard'), normal N(0, init_std^2), xavier/xavier_normal (Var = 2/(fan_in+fan_out)), "
        "he/he_uniform (Var = 2/fan_in), lecun (Var = 1/fan_in), orthogonal.",
        choices=INITS,
    )
    init_std: float = key(0.01, "Standard deviation of the 'normal' init.", low=0.0, low_open=True, high=100.0)
    init_gain: float = key(1.0, "Multiplies the initial weights' standard deviation.", low=0.0, low_open=True, high=100.0)
    bias_std: float = key(0.0, "Biases start N(0, bias_std^2); 0 means zero biases.", low=0.0, high=100.0)
    bias_init: float = key(0.0, "Constant added to every initial hidden bias (a negative value kills ReLUs).", low=-100.0, high=100.0, kinds=FEEDFORWARD_KINDS)
    batchnorm: bool = key(False, "Batch-normalise each hidden pre-activation (Ioffe & Szegedy 2015); per channel over batch, height and width in a CNN.", kinds=FEEDFORWARD_KINDS)
    residual: bool = key(False, "Residual connections: an MLP layer outputs h + phi(z) where widths match; a CNN's layers pair into basic blocks (He et al. 2016) with identity skips, or 1x1 projections where channels or size change; each Transformer sub-layer adds its input.", kinds=FEEDFORWARD_KINDS + TRANSFORMER_KINDS)
    recurrent_init: str = key(
        "orthogonal",
        "Recurrent weight init: orthogonal (Saxe et al. 2013), identity (Le et al. 2015), xavier, normal.",
        choices=RECURRENT_INITS,
        kinds=RECURRENT_KINDS,
    )
    recurrent_gain: float = key(1.0, "Multiplies the recurrent weights (spectral radius for orthogonal/identity).", low=0.0, low_open=True, high=100.0, kinds=RECURRENT_KINDS)
    heads: int = key(4, "Attention heads; model.width must be divisible by it.", low=1, high=256, kinds=TRANSFORMER_KINDS)
    mlp_ratio: int = key(4, "Width of each block's MLP as a multiple of model.width.", low=1, high=16, kinds=TRANSFORMER_KINDS)
    norm: str = key("pre", "LayerNorm placement: post (after the residual addition, the original Transformer), pre (inside the branch, plus a final LayerNorm; Xiong et al. 2020), none.", choices=NORM_PLACEMENTS, kinds=TRANSFORMER_KINDS)
    max_len: int = key(64, "Rows of the learned positional embedding: the longest sequence the Transformer accepts.", low=1, high=4096, kinds=TRANSFORMER_KINDS)
    causal: bool = key(False, "Causal attention: position i attends to positions <= i only.", kinds=TRANSFORMER_KINDS)
    forget_bias: float = key(1.0, "Added to the LSTM forget gate's bias at initialisation.", low=-100.0, high=100.0, kinds=("lstm",))


@dataclass(frozen=True)
class DataConfig:
    """The task: generated on the fly from a seed, never downloaded."""

    task: str = key("spirals", "Task: spirals, moons, circles, xor, teacher (MLP); digits (scikit-learn's 8x8 handwritten digits), shapes (generated images of bars, crosses and squares) (CNN); adding, copy, sine (recurrent); sort, reverse, recall (Transformer).", choices=TASKS)
    samples: int = key(2048, "Examples generated (training plus held-out); digits has 1,797 and uses all of them unless this is lower.", low=16, high=1_000_000)
    test_fraction: float = key(0.2, "Fraction of the examples held out for evaluation.", low=0.0, high=0.9, low_open=True)
    noise: float = key(0.1, "Noise added to inputs (2-D tasks), teacher targets, the sine signal, or the shapes' pixels.", low=0.0, high=10.0)
    seed: int = key(0, "Seed of the data generator.", low=0, high=2**31 - 1)
    classes: int = key(3, "Number of spiral arms.", low=2, high=10, tasks=("spirals",))
    features: int = key(8, "Input dimension of the teacher task.", low=1, high=1024, tasks=("teacher",))
    outputs: int = key(1, "Output dimension of the teacher task.", low=1, high=256, tasks=("teacher",))
    image_size: int = key(16, "Side of the square shapes images, in pixels.", low=3, high=64, tasks=("shapes",))
    seq_len: int = key(50, "Sequence length T (recurrent and Transformer tasks).", low=2, high=2000, tasks=SEQUENCE_TASKS + TOKEN_TASKS)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: optimiser, learning rate, clipping, batch, seed and number type."""

    optimizer: str = key("sgd", "Optimiser: sgd, momentum (heavy ball), adam, rmsprop.", choices=OPTIMIZERS)
    lr: float = key(0.1, "Learning rate.", low=0.0, low_open=True, high=1e3)
    momentum: float = key(0.9, "Momentum coefficient of the momentum optimiser.", low=0.0, high=1.0, high_open=True)
    weight_decay: float = key(0.0, "L2 coefficient lambda: adds lambda*W to each weight matrix's gradient.", low=0.0, high=10.0)
    clip: str = key("none", "Gradient clipping: none, norm (global L2 norm, Pascanu et al. 2013), value (elementwise).", choices=CLIP_MODES)
    clip_threshold: float = key(1.0, "Clipping threshold theta.", low=0.0, low_open=True, high=1e6)
    batch_size: int = key(64, "Examples per optimiser step.", low=1, high=65536)
    seed: int = key(0, "Seed of initialisation and batch order.", low=0, high=2**31 - 1)
    dtype: str = key("float32", "Number type: float32 (fast; on x86 values below 1.2e-38 count as zero) or float64 (exact, for gradient checks).", choices=DTYPES)
    warmup_steps: int = key(0, "Linear learning-rate warmup: lr x min(1, (t+1)/warmup_steps) over the first steps; 0 = none.", low=0, high=10**9)
    schedule: str = key("constant", "Learning-rate decay after the warmup: constant, linear (to 0 at train.steps) or cosine (to 0 at train.steps).", choices=SCHEDULES)
    steps: int = key(3000, "Steps `gradtui run` trains when --steps is not given.", low=1, high=10**9)
    eval_every: int = key(100, "Steps between evaluations on the held-out split.", low=1, high=10**9)


@dataclass(frozen=True)
class AlertsConfig:
    """Thresholds and windows of the diagnosis (docs/alerts.md gives the reasoning behind each default)."""

    vanishing_ratio: float = key(1e-3, "Vanishing when the first hidden layer's gradient (delta_norm and grad_norm) is below this fraction of the last hidden layer's.", low=0.0, low_open=True, high=1.0)
    update_ratio_min: float = key(1e-5, "Vanishing when the early layers' update ratio (|dW|/|W| per step) is below this ...", low=0.0, low_open=True, high=1.0)
    update_ratio_healthy: float = key(1e-3, "... while the output layer's is above this (about 1e-3 is a healthy step).", low=0.0, low_open=True, high=1.0)
    weight_shrink: float = key(0.5, "Vanishing when the first layer's weight norm fell below this fraction of its starting value while the output layer's did not.", low=0.0, low_open=True, high=1.0, high_open=True)
    flat_loss: float = key(0.01, "Loss counts as flat when it moved by less than this fraction over a window; a flat loss loosens the vanishing thresholds tenfold.", low=0.0, low_open=True, high=1.0)
    time_ratio: float = key(1e-3, "Vanishing through time when |dL/dh_1| is below this fraction of |dL/dh_T|.", low=0.0, low_open=True, high=1.0)
    exploding_norm: float = key(1e3, "Exploding when the global gradient norm is above this.", low=0.0, low_open=True)
    exploding_growth: float = key(10.0, "Exploding when the global gradient norm (lowest of the last 5 steps) is this many times its lowest block average within the window.", low=1.0, low_open=True)
    exploding_rise_steps: int = key(2, "Steps the exploding condition must hold before its alert rises (short: explosions turn into NaN within a few steps).", low=1, high=100_000)
    weight_growth: float = key(2.0, "Exploding when the total weight norm grew by this factor within the window, rising in every block.", low=1.0, low_open=True)
    loss_swing: float = key(0.5, "Exploding when the loss's block averages jump both up and down by more than this fraction within the window.", low=0.0, low_open=True)
    swing_level: float = key(0.1, "A loss swing counts only while the window's highest block average is at least this fraction of the first block average since the start or the last change: a loss far below where it started fluctuates with the mini-batches, not from overshooting.", low=0.0, high=1.0)
    dead_fraction: float = key(0.4, "Dead units when a layer's fraction of dead units is above this.", low=0.0, high=1.0, high_open=True)
    saturation: float = key(0.4, "Saturation when a layer's fraction of saturated activations is above this.", low=0.0, high=1.0, high_open=True)
    collapse_spread: float = key(0.1, "Rank collapse when the last Transformer block's token spread ||X - 1 xbar^T||_F / ||X||_F is below this.", low=0.0, low_open=True, high=1.0, high_open=True)
    rise_steps: int = key(20, "Steps a condition must hold before its alert rises.", low=1, high=100_000)
    clear_steps: int = key(50, "Steps a condition must be absent before its alert clears.", low=1, high=100_000)
    window: int = key(100, "Steps of history the trend rules (growth, flat loss, oscillation, weight growth) look at, in 10 blocks.", low=10, high=100_000)


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "alerts": AlertsConfig,
}
TOP_LEVEL_TEXT = ("name", "title", "description", "press")


@dataclass(frozen=True)
class KeySpec:
    """One dotted key of the schema with its contract, derived from the dataclass field."""

    dotted: str
    type: type
    default: Any
    doc: str
    choices: tuple | None
    low: float | None
    high: float | None
    low_open: bool
    high_open: bool
    kinds: tuple | None
    tasks: tuple | None

    def applies_to(self, kind: str, task: str) -> bool:
        """Whether the key means anything for this model kind and task."""
        return (not self.kinds or kind in self.kinds) and (not self.tasks or task in self.tasks)

    def allowed(self) -> str:
        """Human-readable statement of the allowed values."""
        if self.type is bool:
            return "true or false"
        if self.choices:
            return "one of " + ", ".join(self.choices)
        word = "an integer" if self.type is int else "a number"
        if self.low is None and self.high is None:
            return word
        parts = []
        if self.low is not None:
            parts.append(("> " if self.low_open else ">= ") + _fmt(self.low))
        if self.high is not None:
            parts.append(("< " if self.high_open else "<= ") + _fmt(self.high))
        return f"{word} {' and '.join(parts)}"


def _fmt(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


@functools.cache
def _key_specs() -> dict[str, KeySpec]:
    specs = {}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            m = f.metadata
            specs[f"{section}.{f.name}"] = KeySpec(
                dotted=f"{section}.{f.name}",
                type=_TYPES[f.type] if isinstance(f.type, str) else f.type,
                default=f.default,
                doc=m["doc"],
                choices=m["choices"],
                low=m["low"],
                high=m["high"],
                low_open=m["low_open"],
                high_open=m["high_open"],
                kinds=m["kinds"],
                tasks=m["tasks"],
            )
    return specs


def key_specs() -> dict[str, KeySpec]:
    """Every key of the schema, by dotted name, in declaration order (a fresh dict each call)."""
    return dict(_key_specs())
