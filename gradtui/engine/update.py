"""Gradient clipping, weight decay and the optimisers, over the flat parameter vector.

The update writes the new parameters and optimiser state into *separate* buffers;
the caller swaps them in only when every new value is finite, so a step that would
produce NaN or Inf leaves the model exactly as it was.

With g the gradient, theta the parameters, lr the learning rate:
    clip "norm":  g <- g * c/||g|| when ||g|| > c   (global L2 norm, Pascanu et al. 2013)
    clip "value": g <- min(max(g, -c), c) elementwise
    weight decay: g <- g + lambda * W   (weight matrices only; after clipping, as in PyTorch)
    sgd:          theta <- theta - lr g
    momentum:     v <- mu v + g;  theta <- theta - lr v
    adam:         m <- b1 m + (1-b1) g;  s <- b2 s + (1-b2) g^2;
                  theta <- theta - lr (m/(1-b1^t)) / (sqrt(s/(1-b2^t)) + eps)
    rmsprop:      s <- rho s + (1-rho) g^2;  theta <- theta - lr g / (sqrt(s) + eps)
"""

from __future__ import annotations

import numpy as np
from gradtui.engine.jit import kernel

SGD, MOMENTUM, ADAM, RMSPROP = range(4)
OPTIMIZER_CODES = {"sgd": SGD, "momentum": MOMENTUM, "adam": ADAM, "rmsprop": RMSPROP}
CLIP_NONE, CLIP_NORM, CLIP_VALUE = range(3)
CLIP_CODES = {"none": CLIP_NONE, "norm": CLIP_NORM, "value": CLIP_VALUE}
ADAM_BETA1, ADAM_BETA2, RMSPROP_RHO, EPS = 0.9, 0.999, 0.99, 1e-8



@kernel
def gradient_norms(grad, segments, n_layers, layer_grad_norm):
    """Global L2 norm of ``grad`` and, per layer, the norm of its weight matrices' gradient."""
    total = 0.0
    layer_grad_norm[:] = 0.0
    for s in range(segments.shape[0]):
        acc = 0.0
        for i in range(segments[s, 0], segments[s, 1]):
            acc += grad[i] * grad[i]
        total += acc
        if segments[s, 3]:
            layer_grad_norm[segments[s, 2]] += acc
    for layer in range(n_layers):
        layer_grad_norm[layer] = np.sqrt(layer_grad_norm[layer])
    return np.sqrt(total)


@kernel
def apply_update(theta, grad, state1, state2, theta_out, state1_out, state2_out, segments,
                 optimizer, lr, momentum, weight_decay, clip, clip_threshold, total_norm, t,
                 weight_norm, update_ratio, layer_finite):
    """One optimiser step into the ``*_out`` buffers. Returns True when clipping changed g.

    Fills, per layer: weight_norm = ||W_new||, update_ratio = ||W_new - W_old|| / ||W_old||,
    and layer_finite = sum of squares of all new parameters (non-finite if any is).
    """
    scale = 1.0
    clipped = False
    if clip == 1 and total_norm > clip_threshold:
        scale = clip_threshold / total_norm
        clipped = True
    bias1 = 1.0 - ADAM_BETA1 ** t
    bias2 = 1.0 - ADAM_BETA2 ** t
    n_layers = weight_norm.shape[0]
    old_sq = np.zeros(n_layers)
    new_sq = np.zeros(n_layers)
    diff_sq = np.zeros(n_layers)
    layer_finite[:] = 0.0
    for s in range(segments.shape[0]):
        layer = segments[s, 2]
        is_weight = segments[s, 3] == 1
        decay = weight_decay if is_weight else 0.0
        o_acc = 0.0
        n_acc = 0.0
        d_acc = 0.0
        for i in range(segments[s, 0], segments[s, 1]):
            g = grad[i] * scale
            if clip == 2:
                if g > clip_threshold:
                    g = clip_threshold
                    clipped = True
                elif g < -clip_threshold:
                    g = -clip_threshold
                    clipped = True
            old = theta[i]
            g += decay * old
            if optimizer == 0:
                new = old - lr * g
            elif optimizer == 1:
                v = momentum * state1[i] + g
                state1_out[i] = v
                new = old - lr * v
            elif optimizer == 2:
                m = ADAM_BETA1 * state1[i] + (1.0 - ADAM_BETA1) * g
                v = ADAM_BETA2 * state2[i] + (1.0 - ADAM_BETA2) * g * g
                state1_out[i] = m
                state2_out[i] = v
                new = old - lr * (m / bias1) / (np.sqrt(v / bias2) + EPS)
            else:
                v = RMSPROP_RHO * state1[i] + (1.0 - RMSPROP_RHO) * g * g
                state1_out[i] = v
                new = old - lr * g / (np.sqrt(v) + EPS)
            theta_out[i] = new
            o_acc += old * old
            n_acc += new * new
            d_acc += (new - old) * (new - old)
        layer_finite[layer] += n_acc
        if is_weight:
            old_sq[layer] += o_acc
            new_sq[layer] += n_acc
            diff_sq[layer] += d_acc
    for layer in range(n_layers):
        weight_norm[layer] = np.sqrt(new_sq[layer])
        update_ratio[layer] = np.sqrt(diff_sq[layer]) / np.sqrt(old_sq[layer]) if old_sq[layer] > 0.0 else 0.0
    return clipped
