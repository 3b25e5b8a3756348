"""The GRU cell (forward and BPTT for one layer) and what gated cells share: gate scales and
statistics (see rnn_kernel for the array layout, lstm_kernel for the LSTM).

Gate pre-activations are column blocks of a_t = x_t W_ih + h_{t-1} W_hh + b, each block
H wide. GA[t] holds the gate values after their nonlinearity, which is all the backward
pass needs besides the states.

LSTM, blocks [i, f, g, o] (Hochreiter & Schmidhuber 1997, with a forget gate):
    i, f, o = sigmoid, g = tanh;  c_t = f c_{t-1} + i g;  h_t = o tanh(c_t)
    BPTT: dc = dc_{from t+1} + dh o (1 - tanh^2 c_t)
          da = [dc g i(1-i), dc c_{t-1} f(1-f), dc i (1-g^2), dh tanh(c_t) o(1-o)]
          dc_{to t-1} = dc f;  dh_{t-1} = da W_hh^T
GRU, blocks [r, u, n] (PyTorch's convention, b_hn separate):
    r = s(x W_ir + h W_hr + b_r), u = s(x W_iu + h W_hu + b_u),
    n = tanh(x W_in + b_n + r (h W_hn + b_hn)),  h_t = (1 - u) n + u h_{t-1}
    BPTT: dn = dh (1-u)(1-n^2), dr = dn hn r(1-r), du = dh (h_{t-1} - n) u(1-u)
          input side DA = [dr, du, dn];  recurrent side DR = [dr, du, dn r]
          dh_{t-1} = DR W_hh^T + dh u;  db_hn = sum dn r

Statistics of a gated layer:
    act_mean/act_std of h_t over examples, steps and units;
    saturation: share of gate elements (all G blocks, every example and step) whose local
        derivative is below 5% of its maximum: sigmoid gates s(1-s) < 0.0125, tanh blocks
        1 - g^2 < 0.05. A saturated gate passes (almost) no gradient to its pre-activation.
    dead_fraction: units whose gates are saturated in every block, on every example and
        step: no gradient reaches any of their weights (the gated analogue of a dead ReLU).
    delta_norm: ||dL/da||_F over the concatenated gate pre-activations, batch and time
        (for the GRU the input-side DA, where dL/d(n pre-activation) = dn).
    forget_gate_mean (LSTM): mean of f over examples, steps and units (1 = memory open).
"""

from __future__ import annotations

import numpy as np

from gradtui.engine.activations import fast_tanh
from gradtui.engine.jit import kernel
from gradtui.engine.rnn_kernel import SIG_SAT, TANH_SAT, mean_std3, projections, step_projection, unit

LSTM_TANH_BLOCK = 2  # g in [i, f, g, o]
GRU_TANH_BLOCK = 2  # n in [r, u, n]


@kernel
def gate_scales(b, H, tanh_block, n_blocks):
    """Per-column (mul, off) so that off + mul * tanh(mul * a) is sigmoid(a) (0.5, 0.5) or tanh(a) (1, 0)."""
    mul = np.empty_like(b[: n_blocks * H])
    off = np.empty_like(mul)
    for k in range(n_blocks):
        for j in range(H):
            mul[k * H + j] = 1.0 if k == tanh_block else 0.5
            off[k * H + j] = 0.0 if k == tanh_block else 0.5
    return mul, off


@kernel
def gate_activations(tmp, xw, mul, off, ga, exact):
    """ga[:, :n] = off + mul * tanh(mul * (tmp + xw)) for the first n = len(mul) columns.

    One flat loop per row with per-column scales: LLVM vectorises it, where a loop
    handling the four gates of a unit together ran about five times slower.
    """
    B = tmp.shape[0]
    n = mul.shape[0]
    if exact:
        for i in range(B):
            for j in range(n):
                ga[i, j] = off[j] + mul[j] * np.tanh(mul[j] * (tmp[i, j] + xw[i, j]))
    else:
        for i in range(B):
            for j in range(n):
                ga[i, j] = off[j] + mul[j] * fast_tanh(mul[j] * (tmp[i, j] + xw[i, j]))


@kernel
def tanh_block(src, dst, exact):
    """dst = tanh(src) over a (B, H) block."""
    B, H = src.shape
    if exact:
        for i in range(B):
            for j in range(H):
                dst[i, j] = np.tanh(src[i, j])
    else:
        for i in range(B):
            for j in range(H):
                dst[i, j] = fast_tanh(src[i, j])


@kernel
def gru_forward(inp, W_ih, W_hh, b, b_hn, HS, GA, HN, XW, tmp, exact, shift, shift_on):
    """GRU layer forward; HN[t] = h_{t-1} W_hn + b_hn is kept for the backward pass."""
    T, B, H = HN.shape
    projections(inp, W_ih, b, XW)
    mul, off = gate_scales(b, H, -1, 2)  # r and u: sigmoids
    for t in range(T):
        np.dot(HS[t], W_hh, tmp)
        xw = step_projection(inp, W_ih, b, XW, t)
        ga = GA[t]
        gate_activations(tmp, xw, mul, off, ga, exact)
        hn_t = HN[t]
        for i in range(B):
            for j in range(H):
                hn = tmp[i, 2 * H + j] + b_hn[j]
                hn_t[i, j] = hn
                ga[i, 2 * H + j] = xw[i, 2 * H + j] + ga[i, j] * hn  # n's pre-activation
        n_blk = ga[:, 2 * H :]
        tanh_block(n_blk, n_blk, exact)
        h_prev = HS[t]
        h_new = HS[t + 1]
        for i in range(B):
            for j in range(H):
                n = ga[i, 2 * H + j]
                h_new[i, j] = n + ga[i, H + j] * (h_prev[i, j] - n)
        if shift_on:
            HS[t + 1] += shift[t]


@kernel
def gru_backward(W_hh, HS, GA, HN, DH_IN, DA, DR, dh_next, direct, db_hn, time_norm, time_on):
    """BPTT through a GRU layer: DA (input side), DR (recurrent side), db_hn."""
    T, B, H = HN.shape
    one = unit(GA)  # 1 in the gates' type: a float literal would promote float32 maths to float64
    W_hhT = np.ascontiguousarray(W_hh.T)
    dh_next[:] = 0.0
    db_hn[:] = 0.0
    for t in range(T - 1, -1, -1):
        din = DH_IN[t]
        ga = GA[t]
        hn_t = HN[t]
        h_prev = HS[t]
        da = DA[t]
        dr_t = DR[t]
        s = 0.0
        for i in range(B):
            for j in range(H):
                dh = din[i, j] + dh_next[i, j]
                s += np.float64(dh) * np.float64(dh)
                r = ga[i, j]
                u = ga[i, H + j]
                n = ga[i, 2 * H + j]
                dn = dh * (one - u) * (one - n * n)
                dr = dn * hn_t[i, j] * r * (one - r)
                du = dh * (h_prev[i, j] - n) * u * (one - u)
                da[i, j] = dr
                da[i, H + j] = du
                da[i, 2 * H + j] = dn
                dr_t[i, j] = dr
                dr_t[i, H + j] = du
                dr_t[i, 2 * H + j] = dn * r
                db_hn[j] += dn * r
                direct[i, j] = dh * u  # the direct path h_{t-1} -> h_t
        if time_on:
            time_norm[t] = np.sqrt(s)
        if t > 0:
            np.dot(dr_t, W_hhT, dh_next)  # dh_{t-1} = DR W_hh^T + dh u
            dh_next += direct


@kernel
def gated_stats(HS, GA, n_gates, tanh_block, layer, act_mean, act_std, dead, saturation,
                forget_mean, forget_block):
    """Per-layer statistics of a gated layer (definitions in the module docstring)."""
    T, B, GH = GA.shape
    H = GH // n_gates
    mean_std3(HS[1:], act_mean, act_std, layer)
    alive = np.zeros(H, np.uint8)
    n_sat = 0
    f_sum = 0.0
    for t in range(T):
        for i in range(B):
            for k in range(n_gates):
                is_tanh = k == tanh_block
                for j in range(H):
                    v = GA[t, i, k * H + j]
                    if is_tanh:
                        sat = 1.0 - v * v < TANH_SAT
                    else:
                        sat = v * (1.0 - v) < SIG_SAT
                    n_sat += sat
                    alive[j] |= not sat
            if forget_block >= 0:
                for j in range(H):
                    f_sum += GA[t, i, forget_block * H + j]
    n_dead = 0
    for j in range(H):
        n_dead += alive[j] == 0
    dead[layer] = n_dead / H
    saturation[layer] = n_sat / (T * B * GH)
    if forget_block >= 0:
        forget_mean[layer] = f_sum / (T * B * H)
