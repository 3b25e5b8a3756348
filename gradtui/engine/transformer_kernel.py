"""The fused Transformer step: embedding, encoder blocks, head, loss, backward and statistics.

The network (PyTorch's nn.TransformerEncoder of nn.TransformerEncoderLayer(batch_first=True,
dropout=0, norm_first=...)), with tokens x_t, positions t, residual switch r in {0, 1}:
    X_0 = E[x_t] + P[t]
    each block is two sub-layers f = attention, then f = MLP, each with its own LayerNorm:
        post: X' = LN(r X + f(X))      (Vaswani et al. 2017; Xiong et al. 2020's Post-LN)
        pre:  X' = r X + f(LN(X))      (Pre-LN)
        none: X' = r X + f(X)
    head: logits = LN_f(X_L) W + b (pre; LN_f is the final LayerNorm) or X_L W + b
    loss: mean softmax cross-entropy over the scored positions (targets >= 0).

Sub-layer s (0 .. 2L-1) reads the stream XS[s] and writes XS[s+1]; its backward is, with
D = dL/dXS[s+1]:  dS = LN-backward(D) (post) or D;  dU = f-backward(dS);
dL/dXS[s] = LN-backward(dU) (pre) or dU, plus r dS.

Statistic rows: 0 "embed", 1 + s the sub-layers ("block.l.attn", "block.l.mlp"), 2L + 1 "head".
    act_mean, act_std   of what the row writes into the stream (X_0, XS[s+1]; the logits)
    delta_norm          ||dL/d(that output)||_F: the gradient reaching it in the residual stream
    dead_fraction       (MLP rows) share of hidden units inactive on every token of the batch:
                        z <= 0 for relu, z < -3 for gelu (|gelu'| < 0.012 there)
    saturation          0: relu and gelu have no flat upper tail
Per block l, of its output X = XS[2l+2], averaged over the examples of the batch:
    spread   ||X - 1 xbar^T||_F / ||X||_F, xbar the mean token (0 when all tokens are equal:
             the rank collapse of Dong, Cordonnier & Loukas 2021)
    entropy  the attention rows' entropy -sum_j P_ij ln P_ij averaged over heads and queries
             (ln T for uniform attention)
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from gradtui.engine.blocks import add_row, matrix
from gradtui.engine.jit import kernel
from gradtui.engine.transformer_ops import (
    GELU_DEAD_BELOW,
    RELU,
    attention_backward,
    attention_forward,
    column_sums_into,
    layernorm_backward,
    layernorm_forward,
    layernorm_output,
    mlp_backward,
    mlp_forward,
)

NORM_NONE, NORM_POST, NORM_PRE = 0, 1, 2
NORM_CODES = {"none": NORM_NONE, "post": NORM_POST, "pre": NORM_PRE}
# block table columns (parameter offsets in the flat vector)
W_QKV, B_QKV, W_O, B_O, W_1, B_1, W_2, B_2, G_1, BETA_1, G_2, BETA_2 = range(12)
# global offsets
EMBED, POS, G_F, BETA_F, W_HEAD, B_HEAD = range(6)

Workspace = namedtuple("Workspace", [
    "XS",  # (2L+1, N, d) the residual stream before and after each sub-layer
    "U",  # (N, d) scratch: LN(X) fed to the sub-layer (pre-LN), computed again from XHA in the backward pass
    "XHA", "RA",  # (2L, N, d), (2L, N) the pre-LN's xhat and 1/std
    "XHB", "RB",  # (2L, N, d), (2L, N) the post-LN's xhat and 1/std
    "QKV",  # (L, N, 3d) the queries, keys and values (the projection's output)
    "P",  # (L, B, h, T, T) attention probabilities
    "O",  # (N, d) scratch: the heads' outputs, concatenated
    "Z",  # (L, N, m) MLP pre-activation
    "HD",  # (N, m) scratch: the MLP's activation
    "ZMAX",  # (m,) scratch: each hidden unit's largest pre-activation over the batch
    "XHF", "RF", "HF",  # final LayerNorm (pre): xhat, 1/std, output
    "LOGITS", "DLOGITS",  # (N, V)
    "DQKV",  # (N, 3d) scratch
    "FB", "DX", "DF", "DU", "DO",  # (N, d) scratch
    "DZ",  # (N, m) scratch
    "TT",  # (T, T) per-head scratch
])


@kernel(inline="always")
def _set_moments(s, ss, count, act_mean, act_std, idx):
    """act_mean, act_std at idx from the sum and the sum of squares of ``count`` entries."""
    mean = s / count
    act_mean[idx] = mean
    act_std[idx] = np.sqrt(max(ss / count - mean * mean, 0.0))


@kernel
def _moments(A, act_mean, act_std, idx):
    """Mean and standard deviation of every entry of A, accumulated in float64."""
    s = 0.0
    ss = 0.0
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            v = np.float64(A[i, j])
            s += v
            ss += v * v
    _set_moments(s, ss, A.size, act_mean, act_std, idx)


@kernel
def _frobenius(A):
    acc = 0.0
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            v = np.float64(A[i, j])
            acc += v * v
    return np.sqrt(acc)


@kernel(inline="always")
def _dead_fraction(zmax, act):
    """Share of the MLP's hidden units inactive on every row, from each unit's largest
    pre-activation over the rows (transformer_ops.mlp_forward's zmax)."""
    limit = 0.0 if act == RELU else GELU_DEAD_BELOW
    dead = 0
    for j in range(zmax.shape[0]):
        dead += zmax[j] <= limit
    return dead / zmax.shape[0]


@kernel
def _spread(X, T):
    """Mean over examples of ||X_b - 1 xbar_b^T||_F / ||X_b||_F (X_b: the T rows of example b)."""
    n, d = X.shape
    B = n // T
    mean = np.zeros(d)
    total = 0.0
    for b in range(B):
        mean[:] = 0.0
        sq = 0.0
        for t in range(T):
            for j in range(d):
                v = np.float64(X[b * T + t, j])
                mean[j] += v
                sq += v * v
        mean /= T
        around = sq - T * np.sum(mean * mean)
        total += np.sqrt(max(around, 0.0) / sq) if sq > 0.0 else 0.0
    return total / B


@kernel(inline="always")
def _add_bias_residual(F, b, X, residual, moments):
    """F += b (the sub-layer's output bias), plus X when the residual path is on, in one pass;
    returns the result's sum and sum of squares in float64 when ``moments`` (else zeros)."""
    s = 0.0
    ss = 0.0
    for i in range(F.shape[0]):
        for j in range(F.shape[1]):
            v = F[i, j] + b[j]
            if residual:
                v += X[i, j]
            F[i, j] = v
            if moments:
                w = np.float64(v)
                s += w
                ss += w * w
    return s, ss


@kernel
def transformer_forward(theta, blocks, glob, tokens, T, heads, norm, residual, act, causal, ws,
                        stats, act_mean, act_std, dead, spread, entropy):
    """Embedding, blocks and head; fills the workspace and ws.LOGITS (and statistics when ``stats``)."""
    n, d = ws.XS.shape[1], ws.XS.shape[2]
    L = blocks.shape[0]
    V = ws.LOGITS.shape[1]
    X0 = ws.XS[0]
    for i in range(n):
        tok = tokens[i]
        t = i % T
        for j in range(d):
            X0[i, j] = theta[glob[EMBED] + tok * d + j] + theta[glob[POS] + t * d + j]
    if stats:
        _moments(X0, act_mean, act_std, 0)
    for s in range(2 * L):
        l = s // 2
        row = blocks[l]
        X = ws.XS[s]
        g = row[G_1] if s % 2 == 0 else row[G_2]
        be = row[BETA_1] if s % 2 == 0 else row[BETA_2]
        U = X
        if norm == NORM_PRE:
            U = ws.U
            layernorm_forward(X, theta[g : g + d], theta[be : be + d], ws.XHA[s], ws.RA[s], U)
        out = ws.XS[s + 1]
        F = ws.FB if norm == NORM_POST else out
        if s % 2 == 0:
            summed = attention_forward(U, theta, row[W_QKV], row[B_QKV], row[W_O], T, heads, causal,
                                       ws.QKV[l], ws.P[l], ws.O, F)
            if stats:
                entropy[l] = summed / (ws.P.shape[1] * heads * T)
            bias = row[B_O]
        else:
            mlp_forward(U, theta, row[W_1], row[B_1], row[W_2], act, ws.Z[l], ws.HD, F, ws.ZMAX)
            bias = row[B_2]
        total, squares = _add_bias_residual(F, theta[bias : bias + d], X, residual, stats and norm != NORM_POST)
        if norm == NORM_POST:
            layernorm_forward(F, theta[g : g + d], theta[be : be + d], ws.XHB[s], ws.RB[s], out)
        if stats:
            if norm == NORM_POST:
                _moments(out, act_mean, act_std, s + 1)
            else:
                _set_moments(total, squares, out.size, act_mean, act_std, s + 1)
            dead[s + 1] = _dead_fraction(ws.ZMAX, act) if s % 2 == 1 else 0.0
            if s % 2 == 1:
                spread[l] = _spread(out, T)
    top = ws.XS[2 * L]
    if norm == NORM_PRE:
        layernorm_forward(top, theta[glob[G_F] : glob[G_F] + d], theta[glob[BETA_F] : glob[BETA_F] + d],
                          ws.XHF, ws.RF, ws.HF)
        top = ws.HF
    np.dot(top, matrix(theta, glob[W_HEAD], d, V), ws.LOGITS)
    add_row(ws.LOGITS, theta[glob[B_HEAD] : glob[B_HEAD] + V])
    if stats:
        _moments(ws.LOGITS, act_mean, act_std, 2 * L + 1)


@kernel
def cross_entropy(logits, targets, dlogits):
    """(mean cross-entropy over rows with a target >= 0, right predictions, scored rows);
    dlogits = d(mean)/d(logits), 0 on unscored rows."""
    n, V = logits.shape
    scored = 0
    for i in range(n):
        scored += targets[i] >= 0
    total = 0.0
    correct = 0
    inv = 1.0 / max(scored, 1)
    for i in range(n):
        y = targets[i]
        if y < 0:
            dlogits[i, :] = 0.0
            continue
        top = logits[i, 0]
        best = 0
        for k in range(V):
            if logits[i, k] > top:
                top = logits[i, k]
                best = k
        z = 0.0
        for k in range(V):
            e = np.exp(logits[i, k] - top)
            dlogits[i, k] = e
            z += e
        total += np.log(z) + top - logits[i, y]
        correct += best == y
        for k in range(V):
            dlogits[i, k] = dlogits[i, k] / z * inv
        dlogits[i, y] -= inv
    return total * inv, correct, scored


@kernel
def transformer_backward(theta, grad, blocks, glob, tokens, T, heads, norm, residual, act, ws, stats, delta_norm):
    """Back-propagate ws.DLOGITS; writes every parameter's gradient into ``grad``."""
    n, d = ws.XS.shape[1], ws.XS.shape[2]
    L = blocks.shape[0]
    V = ws.LOGITS.shape[1]
    grad[:] = 0.0
    if stats:
        delta_norm[2 * L + 1] = _frobenius(ws.DLOGITS)
    top = ws.HF if norm == NORM_PRE else ws.XS[2 * L]
    np.dot(top.T, ws.DLOGITS, matrix(grad, glob[W_HEAD], d, V))
    column_sums_into(ws.DLOGITS, grad[glob[B_HEAD] : glob[B_HEAD] + V])
    DX = ws.DX
    if norm == NORM_PRE:
        np.dot(ws.DLOGITS, matrix(theta, glob[W_HEAD], d, V).T, ws.DU)
        layernorm_backward(ws.DU, ws.XHF, ws.RF, theta[glob[G_F] : glob[G_F] + d],
                           grad[glob[G_F] : glob[G_F] + d], grad[glob[BETA_F] : glob[BETA_F] + d], DX)
    else:
        np.dot(ws.DLOGITS, matrix(theta, glob[W_HEAD], d, V).T, DX)
    spare = ws.DF
    flipped = False  # whether DX is ws.DF (and spare ws.DX)
    for s in range(2 * L - 1, -1, -1):
        l = s // 2
        row = blocks[l]
        if stats:
            delta_norm[s + 1] = _frobenius(DX)
        g = row[G_1] if s % 2 == 0 else row[G_2]
        be = row[BETA_1] if s % 2 == 0 else row[BETA_2]
        if norm == NORM_POST:
            DF = spare
            layernorm_backward(DX, ws.XHB[s], ws.RB[s], theta[g : g + d], grad[g : g + d], grad[be : be + d], DF)
            spare = DX
        else:
            DF = DX  # dS = D: the two buffers swap roles instead of copying
            flipped = not flipped
        U = ws.XS[s]
        if norm == NORM_PRE:
            U = ws.U
            layernorm_output(ws.XHA[s], theta[g : g + d], theta[be : be + d], U)
        if s % 2 == 0:
            attention_backward(DF, U, theta, grad, row[W_QKV], row[B_QKV], row[W_O], row[B_O], T, heads,
                               ws.QKV[l], ws.P[l], ws.O, ws.DO, ws.DQKV, ws.DU, ws.TT)
        else:
            mlp_backward(DF, U, theta, grad, row[W_1], row[B_1], row[W_2], row[B_2], act, ws.Z[l], ws.HD,
                         ws.DZ, ws.DU)
        DX = spare
        spare = DF
        if norm == NORM_PRE and residual:
            layernorm_backward(ws.DU, ws.XHA[s], ws.RA[s], theta[g : g + d], grad[g : g + d], grad[be : be + d],
                               DX, DF)
        elif norm == NORM_PRE:
            layernorm_backward(ws.DU, ws.XHA[s], ws.RA[s], theta[g : g + d], grad[g : g + d], grad[be : be + d], DX)
        else:
            DX[:] = ws.DU
            if residual:
                DX += DF
    if flipped:
        ws.DX[:] = DX
        DX = ws.DX
    if stats:
        delta_norm[0] = _frobenius(DX)
    for i in range(n):
        tok = tokens[i]
        t = i % T
        for j in range(d):
            grad[glob[EMBED] + tok * d + j] += DX[i, j]
            grad[glob[POS] + t * d + j] += DX[i, j]


@kernel
def transformer_step(theta, grad, blocks, glob, tokens, targets, T, heads, norm, residual, act, causal, ws,
                     stats, act_mean, act_std, dead, delta_norm, spread, entropy):
    """Forward, loss and backward of one batch; returns the loss."""
    transformer_forward(theta, blocks, glob, tokens, T, heads, norm, residual, act, causal, ws,
                        stats, act_mean, act_std, dead, spread, entropy)
    loss, _, _ = cross_entropy(ws.LOGITS, targets, ws.DLOGITS)
    transformer_backward(theta, grad, blocks, glob, tokens, T, heads, norm, residual, act, ws, stats, delta_norm)
    return loss


@kernel
def transformer_evaluate(theta, blocks, glob, tokens, targets, T, heads, norm, residual, act, causal, ws,
                         position_correct):
    """(summed cross-entropy, scored rows); adds right predictions per position into position_correct."""
    empty = np.zeros(1)
    no_stats = np.bool_(False)  # not the literal False: that would compile transformer_forward a second time
    transformer_forward(theta, blocks, glob, tokens, T, heads, norm, residual, act, causal, ws,
                        no_stats, empty, empty, empty, empty, empty)
    loss, _, scored = cross_entropy(ws.LOGITS, targets, ws.DLOGITS)
    V = ws.LOGITS.shape[1]
    for i in range(tokens.shape[0]):
        y = targets[i]
        if y < 0:
            continue
        best = 0
        for k in range(V):
            if ws.LOGITS[i, k] > ws.LOGITS[i, best]:
                best = k
        position_correct[i % T] += best == y
    return loss * scored, scored
