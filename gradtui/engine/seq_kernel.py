"""The fused recurrent step: stacked layers forward, readout, loss, BPTT and statistics in one call.

Layer l reads x (l = 0) or the hidden states of layer l-1 and writes its own HS[l]
(time-major, see rnn_kernel). The readout is linear on the top layer's last R states:
    logits_t = h_t W_out + b_out   for the last R steps (adding: R = 1, copy: 10, sine: T)
Loss: regression, the mean squared error over (R, B, n_out); classification, softmax
cross-entropy summed over the R read-out steps and divided by B * class_steps (the copy
task divides by T + 20, the paper's average over every step, see gradtui.tasks.sequences).
Backward: dL/dh_t from the readout enters the top layer's DH_IN; each layer's BPTT turns it
into DA (dL/d pre-activations), its weight gradients, and DH_IN of the layer below.
time_delta_norm[t] = ||dL/dh_{t+1}||_F of the top layer (total: readout plus all later steps).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from gradtui.engine import gated_kernel as G
from gradtui.engine import lstm_kernel as LK
from gradtui.engine import rnn_kernel as R
from gradtui.engine.jit import kernel
from gradtui.engine.blocks import matrix
from gradtui.engine.rnn_kernel import COL_B, COL_B_HN, COL_FAN_IN, COL_W_HH, COL_W_IH, rows2d

RNN, LSTM, GRU = range(3)
N_GATES = (1, 4, 3)

# The step's arguments as three named structures (Numba compiles namedtuples of arrays and
# scalars like separate arguments). Shapes, with L layers, T steps, B examples, H units,
# G H gate columns, R read-out steps and K outputs: see RecurrentNetwork.workspace.
SeqWorkspace = namedtuple("SeqWorkspace", [
    "XT", "YC", "YV",  # the batch, time-major: inputs (T, B, n_in), class targets (R, B), values (R, B, K)
    "HS", "GA", "C", "TC",  # per layer: states (T + 1, B, H), gates, LSTM cells, GRU h W_hn + b_hn
    "XW", "tmp", "LOG", "DLOG",  # input projection, one step's gates, logits and dL/dlogits
    "DH_IN", "DH_BELOW", "DA", "DR",  # dL/dh from outside the layer and for the layer below, dL/da, GRU's DR
    "dh_next", "dc", "direct",  # one step's carried gradients
    "dWT",  # the sum of dW_hh^T while the vanilla and LSTM backward passes add to it
])
SeqSettings = namedtuple("SeqSettings", [
    "cell", "classification", "class_steps", "act", "exact", "sat_limit",
])
SeqStats = namedtuple("SeqStats", [
    "on", "act_mean", "act_std", "dead", "saturation", "delta_norm", "forget_mean", "time_norm",
])


@kernel
def _layer_input(XT, HS, l):
    return XT if l == 0 else HS[l - 1, 1:]


@kernel
def seq_forward(theta, table, ws, hp, shift, shift_on, st):
    """Every layer's forward pass over the whole sequence (and its statistics when ``st.on``)."""
    L, T1, B, H = ws.HS.shape
    GH = ws.GA.shape[3]
    cell, exact = hp.cell, hp.exact
    for l in range(L):
        inp = _layer_input(ws.XT, ws.HS, l)
        fan_in = table[l, COL_FAN_IN]
        W_ih = matrix(theta, table[l, COL_W_IH], fan_in, GH)
        W_hh = matrix(theta, table[l, COL_W_HH], H, GH)
        b = theta[table[l, COL_B] : table[l, COL_B] + GH]
        top_shift = shift_on and l == L - 1
        HS, GA = ws.HS[l], ws.GA[l]
        if cell == RNN:
            R.rnn_forward(inp, W_ih, W_hh, b, HS, GA, ws.XW, hp.act, exact, shift, top_shift, st, l, hp.sat_limit)
        elif cell == LSTM:
            LK.lstm_forward(inp, W_ih, W_hh, b, HS, GA, ws.C[l], ws.XW, exact, shift, top_shift, st, l)
        else:
            b_hn = theta[table[l, COL_B_HN] : table[l, COL_B_HN] + H]
            G.gru_forward(inp, W_ih, W_hh, b, b_hn, HS, GA, ws.TC[l], ws.XW, ws.tmp, exact, shift, top_shift)
            if st.on:
                G.gated_stats(HS, GA, 3, G.GRU_TANH_BLOCK, l, st.act_mean, st.act_std, st.dead, st.saturation,
                              st.forget_mean, -1)


@kernel
def readout(theta, table, HS, LOG):
    """LOG[r] = h_t W_out + b_out for the last R steps of the top layer."""
    L, T1, B, H = HS.shape
    Rn, _, K = LOG.shape
    W = matrix(theta, table[L, COL_W_IH], H, K)
    b = theta[table[L, COL_B] : table[L, COL_B] + K]
    LOG2 = rows2d(LOG)
    np.dot(rows2d(HS[L - 1, T1 - Rn :]), W, LOG2)
    for r in range(LOG2.shape[0]):
        for k in range(K):
            LOG2[r, k] += b[k]


@kernel
def seq_loss(LOG, y_class, y_value, classification, class_steps, DLOG):
    """Loss, its gradient wrt the logits, and the number of correct read-out predictions."""
    Rn, B, K = LOG.shape
    loss = 0.0
    correct = 0
    if classification:
        scale = 1.0 / (B * class_steps)
        for r in range(Rn):
            for i in range(B):
                z = LOG[r, i]
                mx = z[0]
                best = 0
                for k in range(1, K):
                    if z[k] > mx:
                        mx = z[k]
                        best = k
                correct += best == y_class[r, i]
                s = 0.0
                for k in range(K):
                    s += np.exp(np.float64(z[k] - mx))
                log_s = np.log(s)
                loss += mx + log_s - z[y_class[r, i]]
                for k in range(K):
                    DLOG[r, i, k] = np.exp(z[k] - mx - log_s) * scale
                DLOG[r, i, y_class[r, i]] -= scale
        return loss * scale, correct
    count = Rn * B * K
    for r in range(Rn):
        for i in range(B):
            for k in range(K):
                d = LOG[r, i, k] - y_value[r, i, k]
                loss += np.float64(d) * np.float64(d)
                DLOG[r, i, k] = 2.0 * d / count
    return loss / count, correct


@kernel
def seq_backward(theta, grad, table, ws, hp, st):
    """Readout backward, then BPTT layer by layer, top to bottom; fills ``grad``."""
    L, T1, B, H = ws.HS.shape
    T = T1 - 1
    GH = ws.GA.shape[3]
    Rn, _, K = ws.DLOG.shape
    cell = hp.cell
    W = matrix(theta, table[L, COL_W_IH], H, K)
    DLOG2 = rows2d(ws.DLOG)
    Hr = rows2d(ws.HS[L - 1, T1 - Rn :])
    np.dot(Hr.T, DLOG2, matrix(grad, table[L, COL_W_IH], H, K))
    R.column_sums(DLOG2, grad[table[L, COL_B] : table[L, COL_B] + K])
    if st.on:
        st.delta_norm[L] = R.norm3(ws.DLOG)
    DH_IN, DH_BELOW = ws.DH_IN, ws.DH_BELOW
    if cell == GRU:
        DH_IN[: T - Rn] = 0.0  # (the vanilla and LSTM passes write these steps themselves)
    np.dot(DLOG2, W.T, rows2d(DH_IN[T - Rn :]))
    for l in range(L - 1, -1, -1):
        inp = _layer_input(ws.XT, ws.HS, l)
        fan_in = table[l, COL_FAN_IN]
        W_ih = matrix(theta, table[l, COL_W_IH], fan_in, GH)
        W_hh = matrix(theta, table[l, COL_W_HH], H, GH)
        time_on = st.on and l == L - 1
        dW_ih = matrix(grad, table[l, COL_W_IH], fan_in, GH)
        dW_hh = matrix(grad, table[l, COL_W_HH], H, GH)
        db = grad[table[l, COL_B] : table[l, COL_B] + GH]
        if cell == GRU:
            db_hn = grad[table[l, COL_B_HN] : table[l, COL_B_HN] + H]
            G.gru_backward(W_hh, ws.HS[l], ws.GA[l], ws.TC[l], DH_IN, ws.DA, ws.DR, ws.dh_next, ws.direct, db_hn,
                           st.time_norm, time_on)
            if st.on:
                st.delta_norm[l] = R.norm3(ws.DA)
            R.weight_gradients(inp, ws.HS[l], ws.DA, ws.DR, W_ih, dW_ih, dW_hh, db, DH_BELOW, l > 0)
        else:
            # the vanilla and LSTM cells take their gradients step by step, da_t in ws.tmp
            g = R.LayerGradients(dW_ih, dW_hh, db, DH_BELOW, l > 0, ws.dWT)
            outside_from = T - Rn if l == L - 1 else 0  # steps with a gradient from the readout or the layer above
            if cell == RNN:
                sq = R.rnn_backward(inp, ws.HS[l], W_ih, W_hh, ws.GA[l], DH_IN, outside_from, ws.tmp, g, st.time_norm,
                                    time_on)
            else:
                sq = LK.lstm_backward(inp, ws.HS[l], W_ih, W_hh, ws.GA[l], ws.C[l], DH_IN, outside_from, ws.tmp, ws.dc,
                                      g, st.time_norm, time_on, hp.exact)
            if st.on:
                st.delta_norm[l] = np.sqrt(sq)
        DH_IN, DH_BELOW = DH_BELOW, DH_IN


@kernel
def seq_step(theta, grad, table, ws, hp, shift, shift_on, st):
    """Forward, loss, BPTT and statistics in one call (the GIL is released throughout). Returns the loss.

    ``ws``: a SeqWorkspace; ``hp``: SeqSettings; ``st``: SeqStats (its arrays are filled when
    ``st.on``); ``shift`` is added to the top layer's h_t when ``shift_on`` (tests only).
    """
    L = ws.HS.shape[0]
    seq_forward(theta, table, ws, hp, shift, shift_on, st)
    readout(theta, table, ws.HS, ws.LOG)
    if st.on:
        R.mean_std3(ws.LOG, st.act_mean, st.act_std, L)
        st.dead[L] = 0.0
        st.saturation[L] = 0.0
    loss, _ = seq_loss(ws.LOG, ws.YC, ws.YV, hp.classification, hp.class_steps, ws.DLOG)
    seq_backward(theta, grad, table, ws, hp, st)
    return loss


@kernel
def seq_evaluate(theta, table, ws, hp, shift):
    """Loss and number of correct read-out predictions, forward only."""
    empty = np.zeros(1)
    off = SeqStats(False, empty, empty, empty, empty, empty, empty, empty)
    seq_forward(theta, table, ws, hp, shift, False, off)
    readout(theta, table, ws.HS, ws.LOG)
    return seq_loss(ws.LOG, ws.YC, ws.YV, hp.classification, hp.class_steps, ws.DLOG)
