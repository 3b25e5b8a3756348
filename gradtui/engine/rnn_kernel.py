"""Shared recurrent-kernel helpers and the vanilla RNN cell (forward and BPTT for one layer).

Arrays are time-major: a layer's hidden states HS have shape (T + 1, B, H) with
HS[0] = h_0 = 0 and HS[t] = h_t; the input projection of the whole sequence is one
matrix product XW = X W_ih over (T B) rows before the time loop (a narrow input's, one
small product per step inside it), the recurrent product h_{t-1} W_hh is one
(B, H) x (H, G H) BLAS call per step, added into a_t in place (gradtui.engine.gemm), and
everything elementwise is a fused loop. The backward pass of the vanilla and LSTM cells takes step t's share of
dW_ih, dW_hh, db and of the gradient for the layer below while da_t is in cache
(step_gradients; db in the cell's own loop or add_bias_gradient), and adds da_t W_hh^T straight into dL/dh_{t-1} (gemm with beta = 1), so
no (T, B, G H) array of da goes through memory; the GRU's, after its time loop, as one
matrix product each over all T B rows (weight_gradients).

The vanilla cell in float32 with H a multiple of 16 up to 64 (the presets' 32 and 64) runs
on its own path instead (rnn_forward_vector, rnn_backward_vector): each step one product in
vector registers with its elementwise work done on the rows while they are there
(gradtui.engine.cell_vector), and its weight gradients as one product each over all T B rows.

Vanilla cell (G = 1):  a_t = x_t W_ih + h_{t-1} W_hh + b,  h_t = phi(a_t)
BPTT:  dh_t = dL/dh_t (total: from the readout or the layer above, plus from step t+1)
       da_t = dh_t * phi'(a_t);   dh_{t-1} += da_t W_hh^T
Statistics of a vanilla layer (all steps and examples together, like an MLP layer):
    act_mean/act_std of h_t; dead_fraction: units with phi' = 0 on every example and step
    (dead ReLUs); saturation: share of (example, step, unit) elements with phi' below 5% of
    its maximum (sigmoid, tanh; never for ReLU); delta_norm = ||da||_F over batch and time.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from gradtui.engine.activations import SIGMOID, TANH, activate, fast_tanh
from gradtui.engine.blocks import block_moments, transpose_into
from gradtui.engine.cell_vector import cell_backward, cell_forward, grad_accumulate, vector_path
from gradtui.engine.gemm import gemm
from gradtui.engine.jit import kernel

# Layer table columns (int64, one row per recurrent layer, then the output row).
COL_W_IH, COL_W_HH, COL_B, COL_B_HN, COL_FAN_IN = range(5)
# One layer's gradient outputs for the backward passes that take them step by step: dW_ih
# (fan_in, G H), dW_hh (H, G H), db (G H), and DX (T, B, fan_in), dL/d(layer input), filled
# when ``below`` (a layer below exists); dW_hhT (G H, H) holds the sum of dW_hh^T until the
# end (da_t^T h_{t-1} ran 7-11% faster in OpenBLAS than h_{t-1}^T da_t at G H = 256); on the
# vanilla cell's vector path it holds W_hh^T.
LayerGradients = namedtuple("LayerGradients", ["dW_ih", "dW_hh", "db", "DX", "below", "dW_hhT"])
# Gates below 5% of their maximal derivative count as saturated (as for the MLP).
SIG_SAT = 0.25 * 0.05
TANH_SAT = 0.05


@kernel(inline="always")
def tanh_(x, exact):
    """Exact tanh in float64 (gradient checks), the vectorisable rational one in float32."""
    return np.tanh(x) if exact else fast_tanh(x)


@kernel(inline="always")
def unit(a):
    """1 in the element type of ``a``: a float literal would promote float32 arithmetic to float64."""
    return np.ones(1, a.dtype)[0]


@kernel
def sum_and_squares(x):
    """(sum x, sum x^2) over a 1-D block of a few thousand elements, accumulated in its own
    type (float32 vectorises twice as wide as float64; LLVM keeps dozens of partial sums, so
    each adds up a few dozen terms and the result stays within ~1e-6 relative) and returned
    as float64, which the callers sum across steps; redone in float64 when the sum of squares
    leaves the safe range (gradtui.engine.blocks.block_moments)."""
    s = x[0] - x[0]
    q = s
    for j in range(x.shape[0]):
        v = x[j]
        s += v
        q += v * v
    return block_moments(x, 0, x.shape[0], s - s, s, q)


@kernel
def rows2d(a):
    """A contiguous (T, B, K) block seen as (T B, K)."""
    return a.reshape((a.shape[0] * a.shape[1], a.shape[2]))


@kernel
def norm3(a):
    """Frobenius norm of a 3-D block, accumulated in float64."""
    s = 0.0
    for t in range(a.shape[0]):
        for i in range(a.shape[1]):
            for j in range(a.shape[2]):
                v = np.float64(a[t, i, j])
                s += v * v
    return np.sqrt(s)


@kernel
def mean_std3(a, out_mean, out_std, idx):
    """Mean and population standard deviation of every element of a 3-D block."""
    s = 0.0
    ss = 0.0
    for t in range(a.shape[0]):
        for i in range(a.shape[1]):
            for j in range(a.shape[2]):
                v = np.float64(a[t, i, j])
                s += v
                ss += v * v
    count = a.shape[0] * a.shape[1] * a.shape[2]
    mean = s / count
    out_mean[idx] = mean
    out_std[idx] = np.sqrt(max(ss / count - mean * mean, 0.0))


@kernel
def column_sums(a2d, out):
    """out[j] = sum_i a2d[i, j] (bias gradients), accumulated in the array's type."""
    out[:] = 0.0
    for i in range(a2d.shape[0]):
        for j in range(a2d.shape[1]):
            out[j] += a2d[i, j]


# Inputs with at most this many channels (the adding task has 2) are projected one step at
# a time inside the time loop (b, then one product x_t W_ih added to it: its (B, G H) block
# stays in cache instead of a (T, B, G H) array going through memory; per step, OpenBLAS ran
# 1.3-1.5x faster than a fused loop). The GRU's weight gradient X^T DA over all steps is a
# fused loop for more than 128 gate columns: there OpenBLAS's product with 2 rows ran 2.5x
# slower than the loop at 192 and 256 columns, 1.5-3x faster at 64 and 128.
NARROW_INPUT = 8
WIDE_GATES = 128


@kernel
def input_projection(inp, W_ih, b, XW):
    """XW[t] = x_t W_ih + b for every step at once (one matrix product over T B rows)."""
    XW2 = rows2d(XW)
    np.dot(rows2d(inp), W_ih, XW2)
    for r in range(XW2.shape[0]):
        for j in range(XW2.shape[1]):
            XW2[r, j] += b[j]


@kernel
def projections(inp, W_ih, b, XW):
    """Before the time loop: XW = X W_ih + b for every step, for wide inputs (narrow ones: step_projection)."""
    if inp.shape[2] > NARROW_INPUT:
        input_projection(inp, W_ih, b, XW)


@kernel
def step_projection(inp, W_ih, b, XW, t):
    """x_t W_ih + b: XW[t] for wide inputs; for narrow ones computed now, into XW[0]."""
    if inp.shape[2] > NARROW_INPUT:
        return XW[t]
    a = XW[0]
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            a[i, j] = b[j]
    gemm(inp[t], W_ih, a, False, False, 1.0)
    return a


@kernel
def narrow_product(inp, DA, out):
    """out = X^T DA over all T B rows for a narrow input X (a few channels), as a fused loop."""
    T, B, K = inp.shape
    out[:] = 0.0
    for t in range(T):
        for i in range(B):
            for k in range(K):
                v = inp[t, i, k]
                for j in range(DA.shape[2]):
                    out[k, j] += v * DA[t, i, j]


@kernel
def weight_gradients(inp, HS, DA, DR, W_ih, dW_ih, dW_hh, db, DX, below):
    """After the time loop: dW_ih = X^T DA, dW_hh = H_{t-1}^T DR, db = sum DA, DX = DA W_ih^T."""
    T = DA.shape[0]
    DA2 = rows2d(DA)
    if inp.shape[2] <= NARROW_INPUT and DA.shape[2] > WIDE_GATES:
        narrow_product(inp, DA, dW_ih)
    else:
        np.dot(rows2d(inp).T, DA2, dW_ih)
    # dW_hh as a sum of per-step products: with a (H, T B) transposed operand one big
    # product ran about 1.5x slower in OpenBLAS than T small ones.
    part = np.empty_like(dW_hh)
    np.dot(HS[0].T, DR[0], dW_hh)
    for t in range(1, T):
        np.dot(HS[t].T, DR[t], part)
        dW_hh += part
    column_sums(DA2, db)
    if below:
        np.dot(DA2, W_ih.T, rows2d(DX))


@kernel
def clear_gradients(g):
    """Zero a LayerGradients' sums before the backward time loop adds to them."""
    g.dW_ih[:] = 0.0
    g.dW_hhT[:] = 0.0
    g.db[:] = 0.0


@kernel
def finish_gradients(g):
    """After the backward time loop: dW_hh = (sum of dW_hh^T)^T."""
    for k in range(g.dW_hh.shape[0]):
        for j in range(g.dW_hh.shape[1]):
            g.dW_hh[k, j] = g.dW_hhT[j, k]


@kernel
def add_bias_gradient(da, db):
    """db += sum_i da_t[i] for a (B, G H) block da_t; returns ||da_t||_F^2, accumulated in float64."""
    sq = 0.0
    for i in range(da.shape[0]):
        for j in range(da.shape[1]):
            v = da[i, j]
            db[j] += v
            sq += np.float64(v) * np.float64(v)
    return sq


@kernel
def step_gradients(inp, HS, DH_IN, outside_from, da, W_hhT, W_ihT, g, t):
    """The end of backward step t, while da_t = dL/da_t (B, G H) is in cache: dL/dh_{t-1} +=
    da_t W_hh^T (written, not added, before ``outside_from``: no gradient reaches those steps
    from outside the layer), and step t's share of the weight gradients: dW_ih += x_t^T da_t,
    dW_hhT += da_t^T h_{t-1} (none at t = 0: h_0 = 0), and DX[t] = da_t W_ih^T when
    ``g.below``. (db, the sum of da_t over examples, is the caller's: the vanilla cell adds
    it in the loop that writes da_t, the LSTM in add_bias_gradient.)
    """
    if t > 0:
        gemm(da, W_hhT, DH_IN[t - 1], False, False, 1.0 if t - 1 >= outside_from else 0.0)
        gemm(da, HS[t], g.dW_hhT, True, False, 1.0)
    gemm(inp[t], da, g.dW_ih, True, False, 1.0)  # per step, 1.8x faster than a loop with 2 inputs
    if g.below:
        gemm(da, W_ihT, g.DX[t])


@kernel
def rnn_forward(inp, W_ih, W_hh, b, HS, D, XW, act, exact, shift, shift_on, st, layer, sat_limit):
    """Vanilla layer forward: HS[1..T] = h_t and D[t] = phi'(a_t). ``shift`` is added to h_t (tests).
    When ``st.on``, the layer's statistics into ``st`` (a SeqStats, at ``layer``), each step's
    while it is in cache.

    a_t is built in place: x_t W_ih + b, then h_{t-1} W_hh added by the product itself; in
    float32 with H a multiple of 16 up to 64, by rnn_forward_vector."""
    T, B, H = D.shape
    if vector_path(D):
        rnn_forward_vector(inp, W_ih, W_hh, b, HS, D, XW, act, shift, shift_on, st, layer, sat_limit)
        return
    projections(inp, W_ih, b, XW)
    alive = np.zeros(H, np.uint8)
    sums = np.zeros(3)  # saturated units, sum of h, sum of h^2
    for t in range(T):
        a = step_projection(inp, W_ih, b, XW, t)
        if t > 0:
            gemm(HS[t], W_hh, a, False, False, 1.0)
        finish_state(act, a, HS, D, t, exact, shift, shift_on, st.on, sat_limit, alive, sums)
    if st.on:
        store_layer_stats(st, layer, sums, alive, T * B * H, 1)


@kernel(inline="always")
def finish_state(act, a, HS, D, t, exact, shift, shift_on, stats_on, sat_limit, alive, sums):
    """h_t = phi(a_t) (+ shift[t]) into HS[t + 1], phi'(a_t) into D[t], and the step's statistics
    into the running sums when ``stats_on`` (see rnn_step_stats)."""
    activate(act, a, HS[t + 1], D[t], 0.0, a[0, 0:0], 1.0, exact)
    if shift_on:
        HS[t + 1] += shift[t]
    if stats_on:
        rnn_step_stats(HS[t + 1], D[t], sat_limit, alive, sums)


@kernel
def store_layer_stats(st, layer, sums, alive, count, n_gates):
    """A layer's statistics into ``st`` (a SeqStats) at ``layer``, from its running sums
    [saturated gate elements, sum of h, sum of h^2, ...] over ``count`` states (n_gates gate
    elements each) and its units' alive flags: act_mean, act_std, dead and saturation."""
    mean = sums[1] / count
    st.act_mean[layer] = mean
    st.act_std[layer] = np.sqrt(max(sums[2] / count - mean * mean, 0.0))
    n_dead = 0
    for j in range(alive.shape[0]):
        n_dead += alive[j] == 0
    st.dead[layer] = n_dead / alive.shape[0]
    st.saturation[layer] = sums[0] / (n_gates * count)


@kernel
def rnn_backward(inp, HS, W_ih, W_hh, D, DH_IN, outside_from, da, g, time_norm, time_on):
    """BPTT through a vanilla layer, given DH_IN[t], the gradient reaching h_t from outside the
    layer, for t >= ``outside_from`` (earlier steps are left to be written here). da_t = dh_t * phi'(a_t) goes into the (B, H) scratch ``da`` and into the gradients
    ``g`` (a LayerGradients, see step_gradients); da_t W_hh^T is added to DH_IN[t-1], which so
    becomes the total dL/dh_{t-1}. When ``time_on``, time_norm[t] = ||dL/dh_{t+1}||_F (total).
    Returns ||dL/da||_F^2 over batch and time."""
    if vector_path(D):
        return rnn_backward_vector(inp, HS, W_ih, W_hh, D, DH_IN, outside_from, g, time_norm, time_on)
    T, B, H = D.shape
    W_hhT = np.ascontiguousarray(W_hh.T)  # C order: the per-step product runs ~1.5x faster
    W_ihT = np.ascontiguousarray(W_ih.T)
    clear_gradients(g)
    sq = 0.0
    for t in range(T - 1, -1, -1):
        dh = DH_IN[t]
        Dt = D[t]
        for i in range(B):
            dhr, dr, dar = dh[i], Dt[i], da[i]
            for j in range(H):
                v = dhr[j] * dr[j]
                dar[j] = v
                g.db[j] += v
        if time_on:
            time_norm[t] = np.sqrt(sum_and_squares(dh.reshape(dh.size))[1])
        sq += sum_and_squares(da.reshape(da.size))[1]
        step_gradients(inp, HS, DH_IN, outside_from, da, W_hhT, W_ihT, g, t)
    finish_gradients(g)
    return sq


@kernel
def rnn_forward_vector(inp, W_ih, W_hh, b, HS, D, XW, act, shift, shift_on, st, layer, sat_limit):
    """rnn_forward with each step in one cell_forward (gradtui.engine.cell_vector): a_t = b +
    x_t W_ih + h_{t-1} W_hh (wide inputs: XW[t] + h_{t-1} W_hh) and, for tanh, h_t, phi' and the
    step's statistics while a_t is in registers; other activations (and ``shift``) in passes after it."""
    T, B, H = D.shape
    K = inp.shape[2]
    wide = K > NARROW_INPUT
    projections(inp, W_ih, b, XW)
    fused = act == TANH and not shift_on
    alive = np.zeros(H, np.uint8)
    sums = np.zeros(3)  # saturated units, sum of h, sum of h^2
    step = np.zeros(3)  # one step's sum of h, sum of h^2, saturated units
    HSf = HS.reshape(HS.size)
    n = B * H
    for t in range(T):
        k_h = H if t > 0 else 0
        if wide:
            cell_forward(B, H, XW, t * n, H, inp, 0, 0, W_ih, HS, t * n, k_h, W_hh, HS, (t + 1) * n, D, t * n,
                         fused, sat_limit, step, alive)
        else:
            cell_forward(B, H, b, 0, 0, inp, t * B * K, K, W_ih, HS, t * n, k_h, W_hh, HS, (t + 1) * n, D, t * n,
                         fused, sat_limit, step, alive)
        if fused:
            s, q = block_moments(HSf, (t + 1) * n, (t + 2) * n, 0.0, step[0], step[1])
            sums[0] += step[2]
            sums[1] += s
            sums[2] += q
            continue
        finish_state(act, HS[t + 1], HS, D, t, False, shift, shift_on, st.on, sat_limit, alive, sums)
    if st.on:
        store_layer_stats(st, layer, sums, alive, T * B * H, 1)


@kernel
def rnn_backward_vector(inp, HS, W_ih, W_hh, D, DH_IN, outside_from, g, time_norm, time_on):
    """rnn_backward with each step's product in registers (gradtui.engine.cell_vector): cell_backward
    turns dL/dh_{t-1} = [outside] DH_IN[t-1] + da_t W_hh^T into da_{t-1}, written over phi' in
    D[t-1], with db and both norms. D then holds dL/da for every step, and the weight gradients
    are one product each over all T B rows: dW_hh = H_{t-1}^T DA (grad_accumulate, which ran
    5% faster so than step by step), dW_ih = X^T DA, DX = DA W_ih^T.
    Returns ||dL/da||_F^2 over batch and time."""
    T, B, H = D.shape
    K = inp.shape[2]
    W_hhT = transpose_into(W_hh, g.dW_hhT.reshape(g.dW_hhT.size))  # its scratch: this pass does not need it
    g.dW_ih[:] = 0.0
    g.dW_hh[:] = 0.0
    g.db[:] = 0.0
    DHf, Df = DH_IN.reshape(DH_IN.size), D.reshape(D.size)
    n = B * H
    norms = np.zeros(2)  # one step's ||dh||^2 and ||da||^2
    sq = 0.0
    for t in range(T, 0, -1):
        # t = T: da_{T-1} from the gradient from outside alone; then da_{t-1} from da_t
        cell_backward(B, H, 0 if t == T else H, D, (t % T) * n, W_hhT, t - 1 >= outside_from, DH_IN, (t - 1) * n,
                      D, (t - 1) * n, g.db, norms)
        lo, hi = (t - 1) * n, t * n
        if time_on:
            time_norm[t - 1] = np.sqrt(block_moments(DHf, lo, hi, 0.0, 0.0, norms[0])[1])
        sq += block_moments(Df, lo, hi, 0.0, 0.0, norms[1])[1]
    grad_accumulate(H, H, (T - 1) * B, HS, n, D, n, g.dW_hh)  # from t = 1: h_0 = 0
    grad_accumulate(K, H, T * B, inp, 0, D, 0, g.dW_ih)
    if g.below:
        np.dot(rows2d(D), np.ascontiguousarray(W_ih.T), rows2d(g.DX))
    return sq


@kernel
def add_state_sums(h, sums):
    """sums[1] += sum of the contiguous (B, H) states h, sums[2] += sum of their squares (the
    running sums act_mean and act_std come from, see store_layer_stats)."""
    s, q = sum_and_squares(h.reshape(h.size))
    sums[1] += s
    sums[2] += q


@kernel
def rnn_step_stats(h, d, sat_limit, alive, sums):
    """Add one step's (B, H) states h and phi' d to the statistics' running sums: sums =
    [units with phi' < sat_limit, sum of h, sum of h^2]; alive[j] = 1 once phi' != 0 for unit j
    (dead: units with phi' == 0 on every example and step, dead ReLUs)."""
    zero = d[0, 0] - d[0, 0]
    limit = np.full(1, sat_limit, d.dtype)[0]  # compared in phi's own type
    n_sat = 0
    for i in range(h.shape[0]):
        dr = d[i]
        row_sat = np.int32(0)
        for j in range(h.shape[1]):
            alive[j] |= dr[j] != zero
            row_sat += np.int32(dr[j] < limit)
        n_sat += row_sat
    sums[0] += n_sat
    add_state_sums(h, sums)


def saturation_limit(act: int) -> float:
    """phi' below this counts as saturated for a vanilla layer (never for ReLU)."""
    return {SIGMOID: SIG_SAT, TANH: TANH_SAT}.get(act, -1.0)
