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
from gradtui.engine.blocks import SQUARES_SAFE_MAX, SQUARES_SAFE_MIN
from gradtui.engine.jit import kernel

SGD, MOMENTUM, ADAM, RMSPROP = range(4)
OPTIMIZER_CODES = {"sgd": SGD, "momentum": MOMENTUM, "adam": ADAM, "rmsprop": RMSPROP}
CLIP_NONE, CLIP_NORM, CLIP_VALUE = range(3)
CLIP_CODES = {"none": CLIP_NONE, "norm": CLIP_NORM, "value": CLIP_VALUE}
ADAM_BETA1, ADAM_BETA2, RMSPROP_RHO, EPS = 0.9, 0.999, 0.99, 1e-8
# Parameters per block: sums of squares are taken per block in the parameters' precision and
# checked against the safe range (gradtui.engine.blocks.SQUARES_SAFE_MIN) block by block.
STEP_BLOCK = 1024
# Columns of a ``presummed`` table (one row per segment), filled by a kernel that took a
# segment's sums (and, for plain SGD without clipping, its update) while its gradient was in
# registers: ||g||^2, ||old||^2, ||new||^2, ||new - old||^2 in float64, already checked against
# the safe range; and whether the gradient's sum, the update and its sums are there (1) or not (0).
PRE_GRAD, PRE_OLD, PRE_NEW, PRE_DIFF, PRE_HAS_GRAD, PRE_HAS_UPDATE = range(6)


@kernel
def _squares(x, lo, hi):
    """Sum of x[i]^2 over [lo, hi) as float64: taken in x's precision and redone in float64
    (a float32 1e-30 squared would underflow to 0) when it leaves the safe range."""
    acc = x.dtype.type(0.0)
    for i in range(np.uint64(lo), np.uint64(hi)):
        acc += x[i] * x[i]
    if SQUARES_SAFE_MIN <= acc <= SQUARES_SAFE_MAX:
        return np.float64(acc)
    exact = 0.0
    for i in range(np.uint64(lo), np.uint64(hi)):
        v = np.float64(x[i])
        exact += v * v
    return exact


@kernel(inline="always")
def _presummed(presummed, s, column):
    """Whether row s of a ``presummed`` table (or None) has its column ``column`` flag set."""
    if presummed is None:
        return False
    return presummed[s, column] != 0


@kernel
def gradient_norms(grad, segments, n_layers, layer_grad_norm, presummed=None):
    """Global L2 norm of ``grad`` and, per layer, the norm of its weight matrices' gradient.
    Segments whose sum of squares is in ``presummed`` (PRE_HAS_GRAD) take it from there."""
    total = 0.0
    layer_grad_norm[:] = 0.0
    for s in range(segments.shape[0]):
        acc = 0.0
        if _presummed(presummed, s, PRE_HAS_GRAD):
            acc = presummed[s, PRE_GRAD]
        else:
            for lo in range(segments[s, 0], segments[s, 1], STEP_BLOCK):
                acc += _squares(grad, lo, min(lo + STEP_BLOCK, segments[s, 1]))
        total += acc
        if segments[s, 3]:
            layer_grad_norm[segments[s, 2]] += acc
    for layer in range(n_layers):
        layer_grad_norm[layer] = np.sqrt(layer_grad_norm[layer])
    return np.sqrt(total)


@kernel
def count_beyond(grad, limit):
    """How many gradient entries lie outside [-limit, limit] (value clipping's "clipped" flag)."""
    count = 0
    for i in range(grad.size):
        count += abs(grad[i]) > limit
    return count


@kernel(inline="always")
def _clipped(g, scale, limit, decay, old):
    """The gradient after norm scaling, value clipping to [-limit, limit] and weight decay."""
    return min(max(g * scale, -limit), limit) + decay * old


# The loops below run over a block [lo, hi) of one segment with unsigned indices: a signed
# range(lo, hi) keeps Numba's negative-index wraparound in the loop and stops LLVM vectorising
# it (4-5x slower), and slicing per block costs two atomic reference-count updates per array.
# The optimisers work in the parameters' own precision: float32 vectorises twice as wide.
# Each also returns its block's sums of old^2, new^2 and (new - old)^2 over the values as
# stored, taken in the same loop in that precision (a separate float64 pass cost as much as
# the update itself) and redone in float64 by _exact_sums when they leave the safe range.


@kernel(inline="always")
def _add_squares(old, new, o, n, d):
    """The running sums (o, n, d) of old^2, new^2 and (new - old)^2 with one more element."""
    diff = new - old
    return o + old * old, n + new * new, d + diff * diff


@kernel
def _step_sums(old, new, lo, hi):
    """Sums of old^2, new^2 and (new - old)^2 over [lo, hi) in float64, over the values as
    stored: a float32 difference of 1e-20 squared would underflow to 0."""
    o_acc = n_acc = d_acc = 0.0
    for i in range(np.uint64(lo), np.uint64(hi)):
        o_acc, n_acc, d_acc = _add_squares(np.float64(old[i]), np.float64(new[i]), o_acc, n_acc, d_acc)
    return o_acc, n_acc, d_acc


@kernel(inline="always")
def _exact_sums(old, new, lo, hi, sums):
    """A block's ``sums`` as float64: as they are when all three lie in the safe range, else recomputed."""
    o, n, d = sums
    if SQUARES_SAFE_MIN <= o <= SQUARES_SAFE_MAX and SQUARES_SAFE_MIN <= n <= SQUARES_SAFE_MAX \
            and SQUARES_SAFE_MIN <= d <= SQUARES_SAFE_MAX:
        return np.float64(o), np.float64(n), np.float64(d)
    return _step_sums(old, new, lo, hi)


@kernel
def _sgd(theta, grad, out, lo, hi, scale, limit, decay, lr):
    f = theta.dtype.type
    scale, limit, decay, lr = f(scale), f(limit), f(decay), f(lr)
    o = n = d = f(0.0)
    for i in range(np.uint64(lo), np.uint64(hi)):
        old = theta[i]
        new = old - lr * _clipped(grad[i], scale, limit, decay, old)
        out[i] = new
        o, n, d = _add_squares(old, new, o, n, d)
    return o, n, d


@kernel
def _momentum(theta, grad, out, v_in, v_out, lo, hi, scale, limit, decay, lr, mu):
    f = theta.dtype.type
    scale, limit, decay, lr, mu = f(scale), f(limit), f(decay), f(lr), f(mu)
    o = n = d = f(0.0)
    for i in range(np.uint64(lo), np.uint64(hi)):
        old = theta[i]
        v = mu * v_in[i] + _clipped(grad[i], scale, limit, decay, old)
        v_out[i] = v
        new = old - lr * v
        out[i] = new
        o, n, d = _add_squares(old, new, o, n, d)
    return o, n, d


@kernel
def _adam(theta, grad, out, m_in, v_in, m_out, v_out, lo, hi, scale, limit, decay, lr, bias1, bias2):
    f = theta.dtype.type
    scale, limit, decay, lr, bias1, bias2 = f(scale), f(limit), f(decay), f(lr), f(bias1), f(bias2)
    beta1, beta2, eps = f(ADAM_BETA1), f(ADAM_BETA2), f(EPS)
    one = f(1.0)
    o = n = d = f(0.0)
    for i in range(np.uint64(lo), np.uint64(hi)):
        old = theta[i]
        g = _clipped(grad[i], scale, limit, decay, old)
        m = beta1 * m_in[i] + (one - beta1) * g
        v = beta2 * v_in[i] + (one - beta2) * g * g
        m_out[i] = m
        v_out[i] = v
        new = old - lr * (m / bias1) / (np.sqrt(v / bias2) + eps)
        out[i] = new
        o, n, d = _add_squares(old, new, o, n, d)
    return o, n, d


@kernel
def _rmsprop(theta, grad, out, s_in, s_out, lo, hi, scale, limit, decay, lr):
    f = theta.dtype.type
    scale, limit, decay, lr = f(scale), f(limit), f(decay), f(lr)
    rho, eps, one = f(RMSPROP_RHO), f(EPS), f(1.0)
    o = n = d = f(0.0)
    for i in range(np.uint64(lo), np.uint64(hi)):
        old = theta[i]
        g = _clipped(grad[i], scale, limit, decay, old)
        v = rho * s_in[i] + (one - rho) * g * g
        s_out[i] = v
        new = old - lr * g / (np.sqrt(v) + eps)
        out[i] = new
        o, n, d = _add_squares(old, new, o, n, d)
    return o, n, d


@kernel
def apply_update(theta, grad, state1, state2, theta_out, state1_out, state2_out, segments,
                 optimizer, lr, momentum, weight_decay, clip, clip_threshold, total_norm, t,
                 weight_norm, update_ratio, layer_finite, presummed=None):
    """One optimiser step into the ``*_out`` buffers. Returns True when clipping changed g.

    Segments whose update is in ``presummed`` (PRE_HAS_UPDATE: plain SGD without clipping,
    written into ``theta_out`` already) take their sums from there.
    ``total_norm`` comes from :func:`gradient_norms`. Fills, per
    layer: weight_norm = ||W_new||, update_ratio = ||W_new - W_old|| / ||W_old||, and
    layer_finite = sum of squares of all new parameters (non-finite if any is).
    """
    scale = 1.0
    limit = np.inf
    clipped = False
    if clip == CLIP_NORM and total_norm > clip_threshold:
        scale = clip_threshold / total_norm
        clipped = True
    elif clip == CLIP_VALUE:
        limit = clip_threshold
        clipped = count_beyond(grad, clip_threshold) > 0
    bias1 = 1.0 - ADAM_BETA1 ** t
    bias2 = 1.0 - ADAM_BETA2 ** t
    n_layers = weight_norm.shape[0]
    old_sq = np.zeros(n_layers)
    new_sq = np.zeros(n_layers)
    diff_sq = np.zeros(n_layers)
    layer_finite[:] = 0.0
    for s in range(segments.shape[0]):
        layer, is_weight = segments[s, 2], segments[s, 3] == 1
        if _presummed(presummed, s, PRE_HAS_UPDATE):
            layer_finite[layer] += presummed[s, PRE_NEW]
            if is_weight:
                old_sq[layer] += presummed[s, PRE_OLD]
                new_sq[layer] += presummed[s, PRE_NEW]
                diff_sq[layer] += presummed[s, PRE_DIFF]
            continue
        decay = weight_decay if is_weight else 0.0
        for lo in range(segments[s, 0], segments[s, 1], STEP_BLOCK):
            hi = min(lo + STEP_BLOCK, segments[s, 1])
            if optimizer == SGD:
                sums = _sgd(theta, grad, theta_out, lo, hi, scale, limit, decay, lr)
            elif optimizer == MOMENTUM:
                sums = _momentum(theta, grad, theta_out, state1, state1_out, lo, hi, scale, limit, decay, lr,
                                 momentum)
            elif optimizer == ADAM:
                sums = _adam(theta, grad, theta_out, state1, state2, state1_out, state2_out, lo, hi,
                             scale, limit, decay, lr, bias1, bias2)
            else:
                sums = _rmsprop(theta, grad, theta_out, state1, state1_out, lo, hi, scale, limit, decay, lr)
            o, n, d = _exact_sums(theta, theta_out, lo, hi, sums)
            layer_finite[layer] += n
            if is_weight:
                old_sq[layer] += o
                new_sq[layer] += n
                diff_sq[layer] += d
    for layer in range(n_layers):
        weight_norm[layer] = np.sqrt(new_sq[layer])
        update_ratio[layer] = np.sqrt(diff_sq[layer]) / np.sqrt(old_sq[layer]) if old_sq[layer] > 0.0 else 0.0
    return clipped
