"""The optimiser update and gradient norms of gradtui.engine.update, in plain NumPy.

Same maths, same order and the same outputs (see that module's docstring): the new
parameters and optimiser state go into separate buffers, and per layer the weight norm,
update ratio and the sum of squares of every new parameter (non-finite when any is).
Arithmetic on the parameters happens in their own precision, sums of squares in float64.
"""

from __future__ import annotations

import numpy as np

from gradtui.engine.update import (
    ADAM, ADAM_BETA1, ADAM_BETA2, CLIP_NORM, CLIP_VALUE, EPS, MOMENTUM, RMSPROP, RMSPROP_RHO, SGD,
)


def _squares(a: np.ndarray) -> float:
    v = a.astype(np.float64, copy=False)
    return float(np.dot(v, v))


def gradient_norms(grad, segments, n_layers, layer_grad_norm) -> float:
    """Global L2 norm of ``grad``; per layer, the norm of its weight matrices' gradient."""
    total = 0.0
    layer_grad_norm[:] = 0.0
    for lo, hi, layer, is_weight in segments:
        acc = _squares(grad[lo:hi])
        total += acc
        if is_weight:
            layer_grad_norm[layer] += acc
    np.sqrt(layer_grad_norm, out=layer_grad_norm)
    return float(np.sqrt(total))


def apply_update(theta, grad, state1, state2, theta_out, state1_out, state2_out, segments,
                 optimizer, lr, momentum, weight_decay, clip, clip_threshold, total_norm, t,
                 weight_norm, update_ratio, layer_finite) -> bool:
    """One optimiser step into the ``*_out`` buffers; True when clipping changed the gradient."""
    f = theta.dtype.type
    scale, limit, clipped = 1.0, np.inf, False
    if clip == CLIP_NORM and total_norm > clip_threshold:
        scale, clipped = clip_threshold / total_norm, True
    elif clip == CLIP_VALUE:
        limit = clip_threshold
        clipped = bool(np.any(np.abs(grad) > clip_threshold))
    bias1, bias2 = f(1.0 - ADAM_BETA1 ** t), f(1.0 - ADAM_BETA2 ** t)
    n_layers = weight_norm.shape[0]
    old_sq, new_sq, diff_sq = np.zeros(n_layers), np.zeros(n_layers), np.zeros(n_layers)
    layer_finite[:] = 0.0
    lr_ = f(lr)
    with np.errstate(over="ignore", invalid="ignore"):
        for lo, hi, layer, is_weight in segments:
            old = theta[lo:hi]
            g = np.clip(grad[lo:hi] * f(scale), f(-limit), f(limit))
            if is_weight and weight_decay:
                g = g + f(weight_decay) * old
            if optimizer == SGD:
                new = old - lr_ * g
            elif optimizer == MOMENTUM:
                v = f(momentum) * state1[lo:hi] + g
                state1_out[lo:hi] = v
                new = old - lr_ * v
            elif optimizer == ADAM:
                m = f(ADAM_BETA1) * state1[lo:hi] + f(1.0 - ADAM_BETA1) * g
                v = f(ADAM_BETA2) * state2[lo:hi] + f(1.0 - ADAM_BETA2) * g * g
                state1_out[lo:hi] = m
                state2_out[lo:hi] = v
                new = old - lr_ * (m / bias1) / (np.sqrt(v / bias2) + f(EPS))
            elif optimizer == RMSPROP:
                v = f(RMSPROP_RHO) * state1[lo:hi] + f(1.0 - RMSPROP_RHO) * g * g
                state1_out[lo:hi] = v
                new = old - lr_ * g / (np.sqrt(v) + f(EPS))
            else:
                raise ValueError(f"unknown optimizer code {optimizer}")
            theta_out[lo:hi] = new
            n = _squares(theta_out[lo:hi])
            layer_finite[layer] += n
            if is_weight:
                old_sq[layer] += _squares(old)
                new_sq[layer] += n
                diff_sq[layer] += _squares(theta_out[lo:hi].astype(np.float64) - old)
    np.sqrt(new_sq, out=weight_norm)
    with np.errstate(divide="ignore", invalid="ignore"):
        update_ratio[:] = np.where(old_sq > 0.0, np.sqrt(diff_sq) / np.sqrt(np.where(old_sq > 0, old_sq, 1.0)), 0.0)
    return clipped
