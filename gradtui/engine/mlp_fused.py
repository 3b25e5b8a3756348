"""The MLP step with each hidden layer's products and elementwise work fused in registers
(gradtui.engine.mlp_vector), where that applies: float32, tanh or sigmoid hidden layers whose
width is a multiple of 16 up to 64, no batch norm, no residual connections. Elsewhere, and for
the output layer, gradtui.engine.mlp_kernel's passes; the maths is theirs (see its docstring).

Forward, hidden layer l: H_l = phi(H_{l-1} W_l + b_l) in one call that also sums the layer's
statistics (shifted by the value of its first element, as mlp_kernel._stats_over does).
Backward: dL/dz_l = (dL/dz_{l+1} W_{l+1}^T) * phi'(H_l) in one call (dL/dh_l is never stored),
with db_l and ||dL/dz_l||; dW_l = H_{l-1}^T dL/dz_l in another, with ||dW_l||^2 and, for plain
SGD without clipping, W_l's update (WeightStep). A float32 sum of squares
outside gradtui.engine.blocks' safe range (a vanishing or exploding layer, or a non-finite one)
is recomputed by mlp_kernel's float64-checked passes over the stored block.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from gradtui.engine.activations import SIGMOID, fast_tanh
from gradtui.engine.blocks import SQUARES_SAFE_MAX, SQUARES_SAFE_MIN, matrix, transpose_into
from gradtui.engine.cell_vector import vector_path
from gradtui.engine.jit import kernel
from gradtui.engine.mlp_kernel import (
    COL_B, COL_FAN_IN, COL_FAN_OUT, COL_W, _bias_grad_and_norm, _layer_stats_from_output, _loss_and_dlogits,
    derivative_from_output, mlp_step, output_forward,
)
from gradtui.engine.mlp_vector import layer_backward, layer_forward, weight_gradient
from gradtui.engine.update import (
    PRE_DIFF, PRE_GRAD, PRE_HAS_GRAD, PRE_HAS_UPDATE, PRE_NEW, PRE_OLD, STEP_BLOCK, _squares, _step_sums,
)

# What the backward pass does with each hidden layer's weight gradient besides storing it:
# ``presummed`` (gradtui.engine.update.PRE_GRAD's table, one row per parameter segment;
# ``segment[l]`` is layer l's weight matrix's row) receives ||dW||^2 and, with ``update`` (plain
# SGD without clipping: learning rate ``lr``, weight decay ``decay``), the new weights go into
# ``out`` (the spare parameter buffer) with their sums.
WeightStep = namedtuple("WeightStep", ["update", "lr", "decay", "out", "presummed", "segment"])


@kernel(inline="always")
def _safe(ss):
    return SQUARES_SAFE_MIN <= ss <= SQUARES_SAFE_MAX


@kernel
def fused_applies(hp, table, ws):
    """Whether the step takes the fused path (see the module docstring)."""
    return not hp.exact and vector_path(ws.H) and derivative_from_output(hp.act, hp.batchnorm, table)


@kernel(inline="always")
def _first_output(h, h_off, fan_in, theta, w_off, b_off, n, sigmoid):
    """phi(z[0, 0]) = phi(b_0 + sum_k h[0, k] W[k, 0]) in float32, h's first row at h_off of the
    flat ``h``: the shift of the layer's sums."""
    z = theta[b_off]
    for k in range(fan_in):
        z += h[h_off + k] * theta[w_off + k * n]
    if sigmoid:
        return np.float32(0.5) + np.float32(0.5) * fast_tanh(np.float32(0.5) * z)
    return fast_tanh(z)


@kernel(inline="always")  # no reference-count updates of its arrays per layer
def _hidden_stats(H, l, sums, shift, alive, sigmoid, sat_limit, st):
    """st's statistics of hidden layer l from layer_forward's sums (or, outside the safe range,
    from mlp_kernel._layer_stats_from_output over H[l])."""
    if not _safe(sums[1]):
        _layer_stats_from_output(H[l], sigmoid, sat_limit, alive, st.act_mean, st.act_std, st.dead, st.saturation, l)
        return
    count = H.shape[1] * H.shape[2]
    shifted_mean = sums[0] / count
    st.act_mean[l] = np.float64(shift) + shifted_mean
    st.act_std[l] = np.sqrt(max(sums[1] / count - shifted_mean * shifted_mean, 0.0))
    st.saturation[l] = sums[2] / count
    n_dead = 0
    for j in range(alive.shape[0]):
        n_dead += alive[j] == 0
    st.dead[l] = n_dead / alive.shape[0]


@kernel
def _forward(theta, table, x, ws, hp, st):
    H = ws.H
    depth, batch, n = H.shape
    sigmoid = hp.act == SIGMOID
    limit = np.float32(hp.sat_limit)
    alive = np.zeros(n, np.uint8)
    sums = np.zeros(3)
    # each intrinsic at one call site (each site is compiled in full): inputs as flat blocks
    flat_x, flat_h = x.reshape(x.size), H.reshape(H.size)
    for l in range(depth):
        w_off, b_off, fan_in = table[l, COL_W], table[l, COL_B], table[l, COL_FAN_IN]
        h, h_off = (flat_x, 0) if l == 0 else (flat_h, (l - 1) * batch * n)
        alive[:] = 0
        shift = _first_output(h, h_off, fan_in, theta, w_off, b_off, n, sigmoid)
        layer_forward(batch, n, fan_in, h, h_off, theta, w_off, theta, b_off, H, l * batch * n, sigmoid, shift, limit,
                      sums, alive)
        if st.on:
            _hidden_stats(H, l, sums, shift, alive, sigmoid, hp.sat_limit, st)
    output_forward(theta, table, ws, st)


@kernel
def weight_segments(table, segments):
    """The row of ``segments`` (start, end, layer, is_weight) holding each layer's weight matrix
    (an MLP layer has one)."""
    rows = np.full(table.shape[0], -1, np.int64)
    for s in range(segments.shape[0]):
        if segments[s, 3]:
            rows[segments[s, 2]] = s
    return rows


@kernel(inline="always")  # no reference-count updates of its arrays per layer
def _presum(theta, grad, lo, hi, sums, wstep, row):
    """Row ``row`` of wstep.presummed from weight_gradient's float32-block ``sums`` of [lo, hi),
    each recomputed in float64 from the stored arrays when outside the safe range."""
    p = wstep.presummed[row]
    if _safe(sums[0]):
        p[PRE_GRAD] = sums[0]
    else:
        p[PRE_GRAD] = 0.0
        for start in range(lo, hi, STEP_BLOCK):
            p[PRE_GRAD] += _squares(grad, start, min(start + STEP_BLOCK, hi))
    p[PRE_HAS_GRAD] = 1.0
    if not wstep.update:
        return
    if _safe(sums[1]) and _safe(sums[2]) and _safe(sums[3]):
        p[PRE_OLD], p[PRE_NEW], p[PRE_DIFF] = sums[1], sums[2], sums[3]
    else:
        p[PRE_OLD], p[PRE_NEW], p[PRE_DIFF] = _step_sums(theta, wstep.out, lo, hi)
    p[PRE_HAS_UPDATE] = 1.0


@kernel
def _backward(theta, grad, table, x, ws, hp, st, wstep):
    H = ws.H
    depth, batch, n = H.shape
    sigmoid = hp.act == SIGMOID
    fan_out = table[depth, COL_FAN_OUT]
    np.dot(H[depth - 1].T, ws.dlogits, matrix(grad, table[depth, COL_W], n, fan_out))
    norm = _bias_grad_and_norm(ws.dlogits, grad[table[depth, COL_B] : table[depth, COL_B] + fan_out])
    if st.on:
        st.delta_norm[depth] = norm
    above = ws.dlogits  # dL/dz of the layer above
    above_wt = transpose_into(matrix(theta, table[depth, COL_W], n, fan_out), ws.WT)
    delta, spare = ws.DZ, ws.dH
    sums = np.zeros(4)
    flat_x, flat_h = x.reshape(x.size), H.reshape(H.size)  # one call site per intrinsic, as in _forward
    for l in range(depth - 1, -1, -1):
        b_off = table[l, COL_B]
        layer_backward(batch, n, above.shape[1], above, 0, above_wt, H, l * batch * n, sigmoid, delta, 0, grad, b_off,
                       sums)
        norm = np.sqrt(sums[0]) if _safe(sums[0]) else _bias_grad_and_norm(delta, grad[b_off : b_off + n])
        if st.on:
            st.delta_norm[l] = norm
        fan_in, w_off = table[l, COL_FAN_IN], table[l, COL_W]
        h, h_off = (flat_x, 0) if l == 0 else (flat_h, (l - 1) * batch * n)
        weight_gradient(fan_in, n, batch, h, h_off, delta, 0, grad, w_off, theta, wstep.out, w_off, wstep.update,
                        wstep.lr, wstep.decay, sums)
        _presum(theta, grad, w_off, w_off + fan_in * n, sums, wstep, wstep.segment[l])
        if l > 0:
            above_wt = transpose_into(matrix(theta, table[l, COL_W], n, n), ws.WT)
            above = delta
            delta, spare = spare, delta


@kernel
def fused_mlp_step(theta, grad, table, x, y_class, y_value, ws, hp, running_mean, running_var, train, st, wstep):
    """gradtui.engine.mlp_kernel.mlp_step, on the fused path where it applies (then also what
    ``wstep``, a WeightStep, asks). Returns the loss."""
    if not fused_applies(hp, table, ws):
        return mlp_step(theta, grad, table, x, y_class, y_value, ws, hp, running_mean, running_var, train, st)
    _forward(theta, table, x, ws, hp, st)
    loss = _loss_and_dlogits(ws.logits, y_class, y_value, hp.classification, ws.dlogits)
    _backward(theta, grad, table, x, ws, hp, st, wstep)
    return loss
