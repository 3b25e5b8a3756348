"""The LSTM cell: forward and BPTT for one layer (see rnn_kernel for the array layout).

Blocks [i, f, g, o] of a_t = x_t W_ih + h_{t-1} W_hh + b (Hochreiter & Schmidhuber 1997,
with a forget gate); GA[t] holds the gate values after their nonlinearity:
    i, f, o = sigmoid, g = tanh;  c_t = f c_{t-1} + i g;  h_t = o tanh(c_t)
    BPTT: dc = dc_{from t+1} + dh o (1 - tanh^2 c_t)
          da = [dc g i(1-i), dc c_{t-1} f(1-f), dc i (1-g^2), dh tanh(c_t) o(1-o)]
          dc_{to t-1} = dc f;  dh_{t-1} = da W_hh^T
Each time step is one matrix product and one pass over its rows in either direction; the
statistics (gated_kernel's definitions) are summed step by step while the gates are in cache.
The row loops take their views from borrowed arrays (gradtui.engine.borrowed: no reference
counting), and the backward pass prefetches step t-1's gates and cells during step t's products.

In float32 with H a multiple of 16 up to 64 (the presets' 32 and 64) the cell runs on its own
path instead (lstm_forward_vector, lstm_backward_vector): each step's recurrent product in vector
registers with the gate and cell work, the statistics and the norms done on its rows while they
are there (gradtui.engine.lstm_vector), da_t written over the gates and dW_hh^T += da_t^T h_{t-1}
also in registers (cell_vector.grad_accumulate, 1-3% faster than BLAS's call here).
"""

from __future__ import annotations

import numpy as np

from gradtui.engine.activations import fast_tanh
from gradtui.engine.blocks import block_moments, transpose_into
from gradtui.engine.borrowed import borrowed
from gradtui.engine.cell_vector import grad_accumulate, vector_path
from gradtui.engine.gated_kernel import LSTM_TANH_BLOCK, gate_scales
from gradtui.engine.gemm import gemm
from gradtui.engine.jit import kernel
from gradtui.engine.lstm_vector import lstm_cell_backward, lstm_cell_forward
from gradtui.engine.prefetch import prefetch_lines
from gradtui.engine.rnn_kernel import (
    NARROW_INPUT, SIG_SAT, TANH_SAT, add_bias_gradient, add_state_sums, clear_gradients, finish_gradients,
    input_projection, rows2d, step_gradients, store_layer_stats, tanh_, unit,
)


@kernel(inline="always")
def lstm_row(a, b, mul, off, g, c_prev, c_new, h_new, exact):
    """One example's step: gates g = off + mul tanh(mul (a + b)) (sigmoid or tanh per column),
    then c_t = f c_{t-1} + i g, tanh(c_t) and h_t = o tanh(c_t); a row at a time, so the gates
    are still in L1 when the cell update reads them."""
    H = c_new.shape[0]
    if exact:
        for j in range(4 * H):
            g[j] = off[j] + mul[j] * np.tanh(mul[j] * (a[j] + b[j]))
        for j in range(H):
            c = g[H + j] * c_prev[j] + g[j] * g[2 * H + j]
            c_new[j] = c
            h_new[j] = g[3 * H + j] * np.tanh(c)
    else:
        for j in range(4 * H):
            g[j] = off[j] + mul[j] * fast_tanh(mul[j] * (a[j] + b[j]))
        for j in range(H):
            c = g[H + j] * c_prev[j] + g[j] * g[2 * H + j]
            c_new[j] = c
            h_new[j] = g[3 * H + j] * fast_tanh(c)


@kernel
def lstm_forward(inp, W_ih, W_hh, b, HS, GA, C, XW, exact, shift, shift_on, st, layer):
    """LSTM layer forward over the whole sequence (C[0] = c_0 = 0), and the layer's statistics
    into ``st`` (a SeqStats, at ``layer``) when ``st.on``, each step's while it is in cache.

    a_t - b = x_t W_ih + h_{t-1} W_hh is built in place by the products and b added in the gate
    loop. Wide inputs: XW = X W_ih for every step before the time loop, the recurrent product
    added into XW[t]. Narrow ones: the recurrent product written into XW[0] (beta = 0), then
    x_t W_ih added by a second product, 7% faster a step than writing b first and adding both.
    In float32 with H a multiple of 16 up to 64 (and no ``shift``), by lstm_forward_vector."""
    if vector_path(C) and not shift_on:
        lstm_forward_vector(inp, W_ih, W_hh, b, HS, GA, C, XW, st, layer)
        return
    T, B, H = GA.shape[0], GA.shape[1], C.shape[2]
    GA, C, HS, XW = borrowed(GA), borrowed(C), borrowed(HS), borrowed(XW)  # per-row views, uncounted
    wide = inp.shape[2] > NARROW_INPUT
    if wide:
        np.dot(rows2d(inp), W_ih, rows2d(XW))
    mul, off = gate_scales(b, H, LSTM_TANH_BLOCK, 4)
    alive = np.zeros(H, np.uint8)
    sums = np.zeros(4)  # saturated gates, sum of h, sum of h^2, sum of f
    for t in range(T):
        if wide:
            a = XW[t]
            if t > 0:
                gemm(HS[t], W_hh, a, False, False, 1.0)
        else:
            a = XW[0]
            if t > 0:
                gemm(HS[t], W_hh, a)
            gemm(inp[t], W_ih, a, False, False, 1.0 if t > 0 else 0.0)
        ga, c_prev, c_new, h_new = GA[t], C[t], C[t + 1], HS[t + 1]
        for i in range(B):
            lstm_row(a[i], b, mul, off, ga[i], c_prev[i], c_new[i], h_new[i], exact)
        if shift_on:
            HS[t + 1] += shift[t]
        if st.on:
            lstm_step_stats(ga, h_new, alive, sums)
    if st.on:
        store_layer_stats(st, layer, sums, alive, T * B * H, 4)
        st.forget_mean[layer] = sums[3] / (T * B * H)


@kernel
def lstm_step_stats(ga, h, alive, sums):
    """Add one step's (B, 4 H) gates and (B, H) states to the statistics' running sums:
    sums = [saturated gates, sum of h, sum of h^2, sum of f]; alive[j] = 1 once unit j has a
    gate that is not saturated (definitions in gated_kernel's docstring)."""
    B, H = h.shape
    sig_sat = np.full(1, SIG_SAT, ga.dtype)[0]  # compared in the gates' own type
    tanh_sat = np.full(1, TANH_SAT, ga.dtype)[0]
    one = unit(ga)
    n_sat = 0
    f_sum = 0.0
    for i in range(B):
        g = ga[i]
        gi, gf, gg, go = g[:H], g[H : 2 * H], g[2 * H : 3 * H], g[3 * H :]
        row_sat = np.int32(0)
        row_f = one - one  # summed in the gates' type over one row (see sum_and_squares)
        for j in range(H):
            si = gi[j] * (one - gi[j]) < sig_sat
            sf = gf[j] * (one - gf[j]) < sig_sat
            sg = one - gg[j] * gg[j] < tanh_sat
            so = go[j] * (one - go[j]) < sig_sat
            row_sat = np.int32(row_sat + np.int32(si) + np.int32(sf) + np.int32(sg) + np.int32(so))  # int32 lanes
            alive[j] = alive[j] | np.uint8(not (si & sf & sg & so))
            row_f += gf[j]
        n_sat += row_sat
        f_sum += np.float64(row_f)
    sums[0] += n_sat
    sums[3] += f_sum
    add_state_sums(h, sums)


@kernel
def lstm_backward(inp, HS, W_ih, W_hh, GA, C, DH_IN, outside_from, da, dc, g, time_norm, time_on, exact):
    """BPTT through an LSTM layer, given DH_IN[t], the gradient reaching h_t from outside the
    layer, for t >= ``outside_from`` (earlier steps are left to be written here): da_t = dL/da_t goes into the (B, 4 H) scratch ``da`` and into the gradients ``g``
    (a LayerGradients, see rnn_kernel.step_gradients); da_t W_hh^T is added to DH_IN[t-1],
    which so becomes the total dL/dh_{t-1}. time_norm[t] = ||dL/dh_{t+1}|| when ``time_on``.
    Returns ||dL/da||_F^2 over batch and time. In float32 with H a multiple of 16 up to 64,
    by lstm_backward_vector (which leaves da_t in GA[t]).
    """
    if vector_path(C):
        return lstm_backward_vector(inp, HS, W_ih, W_hh, GA, C, DH_IN, outside_from, dc, g, time_norm, time_on)
    T, B, H = GA.shape[0], GA.shape[1], C.shape[2]
    GA, C, DH_IN, da, dc = borrowed(GA), borrowed(C), borrowed(DH_IN), borrowed(da), borrowed(dc)
    one = unit(GA)
    zero = one - one
    W_hhT = np.ascontiguousarray(W_hh.T)  # C order: the per-step product runs ~1.5x faster
    W_ihT = np.ascontiguousarray(W_ih.T)
    clear_gradients(g)
    dc[:] = 0.0
    sq = 0.0
    for t in range(T - 1, -1, -1):
        dh_t = DH_IN[t]
        s = zero  # ||dL/dh_t||^2, in the element type (see the fallback below)
        for i in range(B):
            # One row of every block at a time (1-D views: LLVM vectorises the loop).
            dh, gr, c_prev, c_r, dar, dcr = dh_t[i], GA[t, i], C[t, i], C[t + 1, i], da[i], dc[i]
            gi, gf, gg, go = gr[:H], gr[H : 2 * H], gr[2 * H : 3 * H], gr[3 * H :]
            ai, af, ag, ao = dar[:H], dar[H : 2 * H], dar[2 * H : 3 * H], dar[3 * H :]
            for j in range(H):
                tc = tanh_(c_r[j], exact)  # tanh(c_t) again: cheaper than storing it and reading it back
                ig, fg, g_, og, d = gi[j], gf[j], gg[j], go[j], dh[j]
                s += d * d
                c = dcr[j] + d * og * (one - tc * tc)  # dL/dc_t
                ao[j] = d * tc * og * (one - og)
                ai[j] = c * g_ * ig * (one - ig)
                ag[j] = c * ig * (one - g_ * g_)
                af[j] = c * c_prev[j] * fg * (one - fg)
                dcr[j] = c * fg  # the part of dL/dc_{t-1} through c_t
        if time_on:
            time_norm[t] = np.sqrt(block_moments(dh_t.reshape(B * H), 0, B * H, zero, zero, s)[1])
        sq += add_bias_gradient(da, g.db)  # a pass of its own: summed in the loop above it ran no faster
        if t > 0:  # step t-1's gates and cells, on their way into cache during step t's products
            prefetch_lines(GA[t - 1].reshape(GA.shape[1] * GA.shape[2]))
            prefetch_lines(C[t - 1].reshape(B * H))
        step_gradients(inp, HS, DH_IN, outside_from, da, W_hhT, W_ihT, g, t)
    finish_gradients(g)
    return sq



@kernel
def lstm_forward_vector(inp, W_ih, W_hh, b, HS, GA, C, XW, st, layer):
    """lstm_forward with each step in one lstm_cell_forward (gradtui.engine.lstm_vector): a_t = b +
    x_t W_ih + h_{t-1} W_hh (wide inputs: XW[t] = x_t W_ih + b, all steps in one product first),
    the gates, c_t, h_t and the step's statistics while a_t is in registers."""
    T, B, H = GA.shape[0], GA.shape[1], C.shape[2]
    K = inp.shape[2]
    G = 4 * H
    wide = K > NARROW_INPUT
    if wide:
        input_projection(inp, W_ih, b, XW)
    alive = np.zeros(H, np.uint8)
    sums = np.zeros(4)  # saturated gates, sum of h, sum of h^2, sum of f
    step = np.zeros(4)  # one step's: saturated gates, sum of h, sum of h^2, sum of f
    HSf = HS.reshape(HS.size)
    n = B * H
    for t in range(T):
        k_h = H if t > 0 else 0
        if wide:
            lstm_cell_forward(B, H, XW, t * B * G, G, inp, 0, 0, W_ih, HS, t * n, k_h, W_hh, (t + 1) * n, GA,
                              t * B * G, C, t * n, (t + 1) * n, step, alive)
        else:
            lstm_cell_forward(B, H, b, 0, 0, inp, t * B * K, K, W_ih, HS, t * n, k_h, W_hh, (t + 1) * n, GA,
                              t * B * G, C, t * n, (t + 1) * n, step, alive)
        s, q = block_moments(HSf, (t + 1) * n, (t + 2) * n, 0.0, step[1], step[2])
        sums[0] += step[0]
        sums[1] += s
        sums[2] += q
        sums[3] += step[3]
    if st.on:
        store_layer_stats(st, layer, sums, alive, T * B * H, 4)
        st.forget_mean[layer] = sums[3] / (T * B * H)


@kernel
def lstm_backward_vector(inp, HS, W_ih, W_hh, GA, C, DH_IN, outside_from, dc, g, time_norm, time_on):
    """lstm_backward with each step's product da_{t+1} W_hh^T in registers (gradtui.engine.lstm_vector):
    lstm_cell_backward turns dL/dh_t = [outside] DH_IN[t] + da_{t+1} W_hh^T into da_t, written
    over the gates in GA[t] (no longer needed), with db and both norms; then step t's weight
    gradients and the layer below's share while da_t is in cache: dW_hh^T += da_t^T h_{t-1} in
    registers, dW_ih and DX[t] by BLAS (as step_gradients).
    Returns ||dL/da||_F^2 over batch and time."""
    T, B, H = GA.shape[0], GA.shape[1], C.shape[2]
    G = 4 * H
    W_hhT = transpose_into(W_hh, np.empty(W_hh.size, W_hh.dtype))
    W_ihT = np.ascontiguousarray(W_ih.T)
    clear_gradients(g)
    dc[:] = 0.0
    DHf, GAf = DH_IN.reshape(DH_IN.size), GA.reshape(GA.size)
    n, m = B * H, B * G
    norms = np.zeros(2)  # one step's ||dh||^2 and ||da||^2
    sq = 0.0
    for t in range(T - 1, -1, -1):
        lstm_cell_backward(B, H, 0 if t == T - 1 else G, GA, (t + 1) * m, W_hhT, t >= outside_from, DH_IN, t * n,
                           GA, t * m, C, (t + 1) * n, t * n, dc, g.db, norms)
        if time_on:
            time_norm[t] = np.sqrt(block_moments(DHf, t * n, (t + 1) * n, 0.0, 0.0, norms[0])[1])
        sq += block_moments(GAf, t * m, (t + 1) * m, 0.0, 0.0, norms[1])[1]
        da = GA[t]
        if t > 0:  # step t-1's gates and cells, on their way into cache during step t's products
            prefetch_lines(GAf[(t - 1) * m : t * m])
            prefetch_lines(C[t - 1].reshape(n))
            prefetch_lines(HS[t - 1].reshape(n))
            grad_accumulate(G, H, B, GA, t * m, HS, t * n, g.dW_hhT)  # dW_hh^T += da_t^T h_{t-1}
        gemm(inp[t], da, g.dW_ih, True, False, 1.0)
        if g.below:
            gemm(da, W_ihT, g.DX[t])
    finish_gradients(g)
    return sq
