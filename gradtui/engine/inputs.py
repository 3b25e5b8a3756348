"""Checks on arrays a user hands to the engine, before any kernel sees them.

The kernels index memory with label values and trust every shape (bounds checks would
cost the speed they exist for), so every public entry point of
:class:`~gradtui.engine.experiment.Experiment` that takes user arrays passes them
through here first: a bad array raises ``ValueError`` naming the argument, what was
expected and what was received, and nothing unchecked reaches a kernel.
"""

from __future__ import annotations

import numpy as np


def _numeric(name: str, value, integer: bool = False) -> np.ndarray:
    """``value`` as an array of real numbers (of integers when ``integer``), or ValueError."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of numbers, not {type(value).__name__} ({err})") from None
    kinds = "iub" if integer else "iubf"
    if array.dtype.kind not in kinds:
        if integer and array.dtype.kind == "f" and array.size and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
            return array.astype(np.int64)
        wanted = "integer class labels" if integer else "real numbers"
        raise ValueError(f"{name} must hold {wanted}; received dtype {array.dtype}")
    return array


def _shape_text(lead: str, tail: tuple) -> str:
    return "(" + ", ".join([lead, *map(str, tail)]) + ")"


def check_batch(data, x, y, name_x: str = "x", name_y: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """(x, y) checked against the dataset's training arrays: the same trailing shape, the same
    number of examples (at least one), real inputs, and for classification integer labels in
    0 .. n_out - 1. Returns them as arrays; raises ValueError naming the argument otherwise."""
    tokens = getattr(data, "tokens", False)
    x = _numeric(name_x, x, integer=tokens)
    y = _numeric(name_y, y, integer=data.classification)
    x_tail, y_tail = tuple(data.x_train.shape[1:]), tuple(data.y_train.shape[1:])
    if x.ndim != 1 + len(x_tail) or tuple(x.shape[1:]) != x_tail:
        raise ValueError(f"{name_x} must have shape {_shape_text('batch', x_tail)}; received {x.shape}")
    if y.ndim != 1 + len(y_tail) or tuple(y.shape[1:]) != y_tail:
        raise ValueError(f"{name_y} must have shape {_shape_text('batch', y_tail)}; received {y.shape}")
    if x.shape[0] < 1:
        raise ValueError(f"{name_x} must hold at least one example; received shape {x.shape}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"{name_y} must have one target per example of {name_x} ({x.shape[0]}); received {y.shape[0]} "
                         f"(shape {y.shape})")
    if tokens:
        low, high = int(x.min()), int(x.max())
        if low < 0 or high >= data.n_in:
            raise ValueError(f"{name_x} must hold tokens 0 to {data.n_in - 1}; received values from {low} to {high}")
    if data.classification:
        low, high = int(y.min()), int(y.max())
        first = -1 if tokens else 0  # token tasks mark unscored positions with -1
        if low < first or high >= data.n_out:
            raise ValueError(f"{name_y} must hold class labels {first} to {data.n_out - 1}; received values from {low} to {high}")
    return x, y


def check_dataset(data) -> None:
    """A user-supplied Dataset: its training and held-out pairs pass :func:`check_batch`
    against its own stated sizes (n_in inputs, n_out classes or outputs)."""
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        check_batch(data, x, y, f"data.x_{split}", f"data.y_{split}")
    width = data.x_train.shape[-1] if np.ndim(data.x_train) >= 2 else None
    if width != data.n_in and not getattr(data, "tokens", False):
        raise ValueError(f"data.x_train must have {data.n_in} input features (data.n_in) in its last axis; "
                         f"received shape {np.shape(data.x_train)}")
    if not data.classification and np.shape(data.y_train)[-1] != data.n_out:
        raise ValueError(f"data.y_train must have {data.n_out} outputs (data.n_out) in its last axis; "
                         f"received shape {np.shape(data.y_train)}")


def check_param(name: str, value, target: np.ndarray) -> np.ndarray:
    """One parameter for set_params: real numbers of exactly the target's shape."""
    array = _numeric(f"params[{name!r}]", value)
    if array.shape != target.shape:
        raise ValueError(f"params[{name!r}] must have shape {target.shape}; received {array.shape}")
    return array


def check_steps(steps) -> int:
    """A number of steps: a whole number, 0 or more."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise ValueError(f"steps must be a whole number, not {steps!r}")
    if steps < 0:
        raise ValueError(f"steps must be 0 or more; received {steps}")
    return int(steps)
