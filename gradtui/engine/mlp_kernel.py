"""The fused MLP kernel: forward, loss, backward and per-layer statistics in one call.

Notation for hidden layer l with input h (batch B x fan_in):
    z = h W + b                                   (pre-activation)
    y = gamma * (z - mu) / sqrt(var + eps) + beta (batch norm, training mode) else y = z
    a = phi(y);  out = h + a if residual and fan_in == fan_out else a
Output: logits = h W_out + b_out; loss = mean softmax cross-entropy or mean squared error.
Backward (delta = dL/dz, the quantity vanishing-gradient theory is about):
    dL/dy = dL/dout * phi'(y);  delta = BN-backward(dL/dy) or dL/dy
    dW = h^T delta;  db = sum_batch delta;  dL/dh = delta W^T (+ dL/dout if residual)

float32 tanh and sigmoid layers of width 16, 32, 48 or 64 without batch norm or residual
connections take gradtui.engine.mlp_fused's path instead (the same maths, fused in registers).

Layer table columns (int64, one row per layer, hidden layers then output):
    W, b, gamma, beta, alpha offsets (-1 when absent), fan_in, fan_out, residual.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from gradtui.engine.jit import kernel

from gradtui.engine.activations import (
    FROM_SIGMOID, FROM_TANH, PRELU, SIGMOID, STORED, TANH, activate, activate_output, phi_prime,
)
from gradtui.engine.batchnorm_kernel import batchnorm_backward, batchnorm_forward
from gradtui.engine.blocks import SQUARES_SAFE_MAX, SQUARES_SAFE_MIN, add_row, block_moments, dot_transposed, matrix

COL_W, COL_B, COL_GAMMA, COL_BETA, COL_ALPHA, COL_FAN_IN, COL_FAN_OUT, COL_RESIDUAL = range(8)

# The kernels' arguments as named structures (Numba compiles namedtuples of arrays and
# scalars like separate arguments), as gradtui.engine.seq_kernel's. Shapes, with L hidden
# layers of H units, B examples and K outputs: see gradtui.engine.mlp_workspace.carve.
MLPWorkspace = namedtuple("MLPWorkspace", [
    "Z", "ZH", "D", "H", "inv_std",  # per layer: phi's input, normalised z, phi', outputs (B, H); 1/sqrt(var + eps)
    # (D holds no layer when phi' is recomputed from H: derivative_from_output)
    "logits", "dlogits", "dH", "dH_next", "DZ",  # (B, K) twice; dL/dh, the layer below's, dL/dz (B, H)
    "xb", "ycb", "yvb",  # the fused loop's batch: inputs, class labels or target rows
    "WT",  # flat, H x max(H, K): a weight matrix's transpose for dot_transposed
])
MLPSettings = namedtuple("MLPSettings", [
    "classification", "act", "slope", "elu_alpha", "batchnorm", "exact", "sat_limit",
])


@kernel
def derivative_from_output(act, batchnorm, table):
    """Whether phi' is recomputed from each layer's output H = phi(y) instead of stored (the
    workspace's D then holds no layer): for tanh and the sigmoid, phi' is a function of phi
    (an FMA per element). The forward pass then writes only H, in one pass with the bias
    (activate_output), and the statistics and the backward pass take phi' from H: no (B, H)
    block of phi' is written or read. Batch norm's backward and residual outputs
    (H = h + phi(y)) keep the stored phi'."""
    residual = False
    for l in range(table.shape[0]):
        residual = residual or table[l, COL_RESIDUAL] != 0
    return (act == TANH or act == SIGMOID) and not batchnorm and not residual


MLPStats = namedtuple("MLPStats", ["on", "act_mean", "act_std", "dead", "saturation", "delta_norm"])


@kernel
def _output_stats(A, out_mean, out_std, idx):
    """Mean and population standard deviation of all elements of A."""
    n, m = A.shape
    s = 0.0
    ss = 0.0
    for i in range(n):
        for j in range(m):
            v = np.float64(A[i, j])
            s += v
            ss += v * v
    count = n * m
    mean = s / count
    out_mean[idx] = mean
    out_std[idx] = np.sqrt(max(ss / count - mean * mean, 0.0))


# Sums of squares of a row or block: in the array's precision, redone in float64 outside the
# safe range (gradtui.engine.blocks.SQUARES_SAFE_MIN).


@kernel(inline="always")
def _row_squares(A, i, ss):
    """Row i of A: its sum of squares ``ss`` as float64, recomputed in float64 when out of the safe range."""
    if SQUARES_SAFE_MIN <= ss <= SQUARES_SAFE_MAX:
        return np.float64(ss)
    exact = 0.0
    for j in range(A.shape[1]):
        v = np.float64(A[i, j])
        exact += v * v
    return exact


STATS_BLOCK = 1024  # elements per block of _layer_stats' sums (whole rows would end in a reduction each)


@kernel
def _layer_stats(H, D, sat_limit, alive, act_mean, act_std, dead, saturation, idx):
    """_stats_over a hidden layer's output H and its stored phi' D (both C-contiguous)."""
    _stats_over(H, D, STORED, sat_limit, alive, act_mean, act_std, dead, saturation, idx)


@kernel
def _layer_stats_from_output(H, sigmoid, sat_limit, alive, act_mean, act_std, dead, saturation, idx):
    """_stats_over a sigmoid or tanh layer's output H, phi' recomputed from it (no stored D)."""
    source = FROM_SIGMOID if sigmoid else FROM_TANH
    _stats_over(H, H, source, sat_limit, alive, act_mean, act_std, dead, saturation, idx)


@kernel(inline="always")
def _block_sums(h, d, lo, hi, c, limit, source):
    """Over h[lo:hi] in h's precision: sums of h - c and (h - c)^2, counts of phi' < limit and
    phi' == 0 (phi': gradtui.engine.activations.phi_prime). Inlined with a constant ``source``,
    so its loop has no branch."""
    zero, one = h.dtype.type(0.0), h.dtype.type(1.0)
    block_s = block_ss = block_sat = block_zero = zero
    for k in range(np.uint64(lo), np.uint64(hi)):
        v = h[k] - c
        dk = phi_prime(source, h, d, k)
        block_s += v
        block_ss += v * v
        block_sat += one if dk < limit else zero
        block_zero += one if dk == zero else zero
    return block_s, block_ss, block_sat, block_zero


@kernel
def _stats_over(H, D, source, sat_limit, alive, act_mean, act_std, dead, saturation, idx):
    """One pass over a hidden layer's output H (C-contiguous), phi' taken from ``source``
    (gradtui.engine.activations.phi_prime; D is H's stored phi', or H itself when phi' comes
    from H): act_mean, act_std of H; dead = share of units with phi' == 0 on the whole batch;
    saturation = share of elements with phi' < sat_limit. Sums and counts over blocks of
    STATS_BLOCK elements are kept in the array's precision (exact for counts below 2^24)
    and added up in float64.

    The moments are of x - c with c = H[0, 0], so mean = c + S1/N and var = S2/N - (S1/N)^2
    with S1, S2 the sums of (x - c) and (x - c)^2: without the shift a saturated layer
    (mean near 1, spread 1e-4) loses its spread to cancellation in float32."""
    n, m = H.shape
    count = n * m
    f = H.dtype.type
    zero, limit = f(0.0), f(sat_limit)
    c = H[0, 0]
    h, d = H.reshape(count), D.reshape(count)
    s = 0.0
    ss = 0.0
    n_sat = 0
    n_zero = 0
    for lo in range(0, count, STATS_BLOCK):
        hi = min(lo + STATS_BLOCK, count)
        if source == FROM_TANH:  # each call inlined with its constant source: no branch in the loop
            block_s, block_ss, block_sat, block_zero = _block_sums(h, d, lo, hi, c, limit, FROM_TANH)
        elif source == FROM_SIGMOID:
            block_s, block_ss, block_sat, block_zero = _block_sums(h, d, lo, hi, c, limit, FROM_SIGMOID)
        else:
            block_s, block_ss, block_sat, block_zero = _block_sums(h, d, lo, hi, c, limit, STORED)
        exact_s, exact_ss = block_moments(h, lo, hi, c, block_s, block_ss)
        s += exact_s
        ss += exact_ss
        n_sat += int(block_sat)
        n_zero += int(block_zero)
    shifted_mean = s / count
    act_mean[idx] = np.float64(c) + shifted_mean
    act_std[idx] = np.sqrt(max(ss / count - shifted_mean * shifted_mean, 0.0))
    saturation[idx] = n_sat / count
    n_dead = 0
    if n_zero >= n:  # with fewer zeros no unit can have phi' = 0 on the whole batch
        alive[:m] = 0
        for i in range(n):
            for j in range(m):
                alive[j] |= phi_prime(source, h, d, i * m + j) != zero
        for j in range(m):
            n_dead += alive[j] == 0
    dead[idx] = n_dead / m


@kernel
def _loss_and_dlogits(logits, y_class, y_value, classification, dlogits):
    """Mean softmax cross-entropy (or mean squared error) and its gradient wrt the logits."""
    n, k = logits.shape
    loss = 0.0
    if classification:
        for i in range(n):
            mx = logits[i, 0]
            for c in range(1, k):
                mx = max(mx, logits[i, c])
            s = 0.0
            for c in range(k):
                e = np.exp(logits[i, c] - mx)
                dlogits[i, c] = e  # softmax = e / s, scaled below: one exp per logit
                s += e
            loss += mx + np.log(s) - logits[i, y_class[i]]
            scale = 1.0 / (s * n)
            for c in range(k):
                dlogits[i, c] *= scale
            dlogits[i, y_class[i]] -= 1.0 / n
        return loss / n
    for i in range(n):
        for c in range(k):
            d = logits[i, c] - y_value[i, c]
            loss += d * d
            dlogits[i, c] = 2.0 * d / (n * k)
    return loss / (n * k)


@kernel
def _bias_grad_and_norm(DZ, db):
    """db[j] = sum_i DZ[i, j]; returns ||DZ||_F. One row-major pass, no temporary."""
    db[:] = 0.0
    ss = 0.0
    for i in range(DZ.shape[0]):
        for j in range(DZ.shape[1]):
            v = DZ[i, j]
            db[j] += v
            w = np.float64(v)  # squared in float64 so tiny float32 errors do not underflow
            ss += w * w
    return np.sqrt(ss)


@kernel
def _delta(dH, D, DZ, db):
    """DZ = dH * phi' (the back-propagated error at z), db = its column sums; returns ||DZ||_F."""
    db[:] = 0.0
    ss = 0.0
    zero = DZ.dtype.type(0.0)
    for i in range(DZ.shape[0]):
        row_ss = zero
        for j in range(DZ.shape[1]):
            v = dH[i, j] * D[i, j]
            DZ[i, j] = v
            db[j] += v
            row_ss += v * v
        ss += _row_squares(DZ, i, row_ss)
    return np.sqrt(ss)


@kernel
def _delta_from_output(dH, H, sigmoid, DZ, db):
    """_delta with phi' recomputed from the layer's output H = phi(y): h (1 - h) for the
    sigmoid, 1 - h^2 for tanh (the formulas gradtui.engine.activations.activate uses)."""
    db[:] = 0.0
    ss = 0.0
    one = DZ.dtype.type(1.0)
    zero = DZ.dtype.type(0.0)
    for i in range(DZ.shape[0]):
        row_ss = zero
        for j in range(DZ.shape[1]):
            h = H[i, j]
            v = dH[i, j] * (h * (one - h) if sigmoid else one - h * h)
            DZ[i, j] = v
            db[j] += v
            row_ss += v * v
        ss += _row_squares(DZ, i, row_ss)
    return np.sqrt(ss)


@kernel
def mlp_forward(theta, table, x, ws, hp, running_mean, running_var, train, use_running, st):
    """Forward pass; fills the workspace ``ws`` (an MLPWorkspace), its logits and (when ``st.on``)
    the activation statistics of ``st`` (an MLPStats). ``hp``: MLPSettings."""
    H, D = ws.H, ws.D
    act = hp.act
    depth = H.shape[0]
    dummy = theta[0:0]
    alive = np.zeros(H.shape[2], np.uint8)
    one_d = derivative_from_output(act, hp.batchnorm, table)
    for l in range(depth):
        fan_in = table[l, COL_FAN_IN]
        fan_out = table[l, COL_FAN_OUT]
        h = x if l == 0 else H[l - 1]
        W = matrix(theta, table[l, COL_W], fan_in, fan_out)
        # Only prelu's backward reads z again; other layers share Z[0], which stays in cache.
        z = ws.Z[l] if act == PRELU else ws.Z[0]
        np.dot(h, W, z)
        bias = theta[table[l, COL_B] : table[l, COL_B] + fan_out]
        if one_d:  # phi(z + b) in one pass; phi' is recomputed from H where needed
            activate_output(act, z, bias, H[l], hp.exact)
            if st.on:
                _layer_stats_from_output(H[l], act == SIGMOID, hp.sat_limit, alive, st.act_mean, st.act_std,
                                         st.dead, st.saturation, l)
            continue
        add_row(z, bias)
        if hp.batchnorm:
            gamma = theta[table[l, COL_GAMMA] : table[l, COL_GAMMA] + fan_out]
            beta = theta[table[l, COL_BETA] : table[l, COL_BETA] + fan_out]
            batchnorm_forward(z, ws.ZH[l], ws.inv_std[l], gamma, beta, running_mean[l], running_var[l], train,
                               use_running)
        alpha = theta[table[l, COL_ALPHA] : table[l, COL_ALPHA] + fan_out] if act == PRELU else dummy
        d = D[l]
        activate(act, z, H[l], d, hp.slope, alpha, hp.elu_alpha, hp.exact)
        if table[l, COL_RESIDUAL]:
            H[l] += h
        if st.on:
            _layer_stats(H[l], d, hp.sat_limit, alive, st.act_mean, st.act_std, st.dead, st.saturation, l)
    output_forward(theta, table, ws, st)


@kernel(inline="always")
def output_forward(theta, table, ws, st):
    """The logits from the last hidden layer's output, and their statistics."""
    depth = ws.H.shape[0]
    fan_in = table[depth, COL_FAN_IN]
    fan_out = table[depth, COL_FAN_OUT]
    W = matrix(theta, table[depth, COL_W], fan_in, fan_out)
    np.dot(ws.H[depth - 1], W, ws.logits)
    add_row(ws.logits, theta[table[depth, COL_B] : table[depth, COL_B] + fan_out])
    if st.on:
        _output_stats(ws.logits, st.act_mean, st.act_std, depth)
        st.dead[depth] = 0.0
        st.saturation[depth] = 0.0


@kernel
def mlp_backward(theta, grad, table, x, ws, hp, st):
    """Back-propagate ``ws.dlogits``; writes every parameter's gradient into ``grad`` (and, when
    ``st.on``, each layer's ||delta||_F into ``st.delta_norm``)."""
    H, D = ws.H, ws.D
    dH, dH_next = ws.dH, ws.dH_next
    depth = H.shape[0]
    one_d = derivative_from_output(hp.act, hp.batchnorm, table)
    fan_in = table[depth, COL_FAN_IN]
    fan_out = table[depth, COL_FAN_OUT]
    W = matrix(theta, table[depth, COL_W], fan_in, fan_out)
    np.dot(H[depth - 1].T, ws.dlogits, matrix(grad, table[depth, COL_W], fan_in, fan_out))
    norm = _bias_grad_and_norm(ws.dlogits, grad[table[depth, COL_B] : table[depth, COL_B] + fan_out])
    if st.on:
        st.delta_norm[depth] = norm
    dot_transposed(ws.dlogits, W, dH, ws.WT)
    for l in range(depth - 1, -1, -1):
        fan_in = table[l, COL_FAN_IN]
        fan_out = table[l, COL_FAN_OUT]
        h = x if l == 0 else H[l - 1]
        db = grad[table[l, COL_B] : table[l, COL_B] + fan_out]
        if hp.act == PRELU:
            # a = alpha*y for y <= 0, so da/dalpha_j = min(y, 0)
            dalpha = grad[table[l, COL_ALPHA] : table[l, COL_ALPHA] + fan_out]
            dalpha[:] = 0.0
            Y = ws.Z[l]
            for i in range(Y.shape[0]):
                for j in range(fan_out):
                    if Y[i, j] <= 0.0:
                        dalpha[j] += dH[i, j] * Y[i, j]
        if hp.batchnorm:
            DY = dH_next  # scratch: dL/dy before the BN backward
            np.multiply(dH, D[l], DY)
            gamma = theta[table[l, COL_GAMMA] : table[l, COL_GAMMA] + fan_out]
            dgamma = grad[table[l, COL_GAMMA] : table[l, COL_GAMMA] + fan_out]
            dbeta = grad[table[l, COL_BETA] : table[l, COL_BETA] + fan_out]
            batchnorm_backward(DY, ws.ZH[l], ws.inv_std[l], gamma, dgamma, dbeta, ws.DZ)
            norm = _bias_grad_and_norm(ws.DZ, db)
        elif one_d:
            norm = _delta_from_output(dH, H[l], hp.act == SIGMOID, ws.DZ, db)
        else:
            norm = _delta(dH, D[l], ws.DZ, db)
        if st.on:
            st.delta_norm[l] = norm
        np.dot(h.T, ws.DZ, matrix(grad, table[l, COL_W], fan_in, fan_out))
        if l > 0:
            W = matrix(theta, table[l, COL_W], fan_in, fan_out)
            dot_transposed(ws.DZ, W, dH_next, ws.WT)
            if table[l, COL_RESIDUAL]:
                dH_next += dH
            dH, dH_next = dH_next, dH


@kernel
def mlp_step(theta, grad, table, x, y_class, y_value, ws, hp, running_mean, running_var, train, st):
    """Forward, loss and backward in one call (the GIL is released throughout). Returns the loss.
    ``train`` updates batch norm's running statistics."""
    mlp_forward(theta, table, x, ws, hp, running_mean, running_var, train, False, st)
    loss = _loss_and_dlogits(ws.logits, y_class, y_value, hp.classification, ws.dlogits)
    mlp_backward(theta, grad, table, x, ws, hp, st)
    return loss


@kernel
def mlp_evaluate(theta, table, x, y_class, y_value, ws, hp, running_mean, running_var):
    """Loss and number of correct predictions, batch norm using its running statistics."""
    empty = np.zeros(1)
    mlp_forward(theta, table, x, ws, hp, running_mean, running_var, False, True,
                MLPStats(False, empty, empty, empty, empty, empty))
    logits = ws.logits
    loss = _loss_and_dlogits(logits, y_class, y_value, hp.classification, ws.dlogits)
    correct = 0
    if hp.classification:
        for i in range(logits.shape[0]):
            if np.argmax(logits[i]) == y_class[i]:
                correct += 1
    return loss, correct
