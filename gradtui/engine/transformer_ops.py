"""The Transformer's sub-layers, forward and backward: LayerNorm, multi-head self-attention, the MLP.

Rows are tokens: an activation X has shape (N, d) with N = batch x T, token t of example b in
row b T + t. Weights are stored (fan_in, fan_out), so a linear map is X W + b (PyTorch keeps
W^T; the oracle test transposes).

LayerNorm over each row (eps = 1e-5, biased variance, learnable gain g and bias beta):
    xhat = (x - mean(x)) r,  r = 1/sqrt(var(x) + eps),  y = g xhat + beta
    backward, with gy = dL/dy g:  dL/dx = r/d (d gy - sum(gy) - xhat sum(gy xhat))
                                  dL/dg = sum_rows dL/dy xhat,  dL/dbeta = sum_rows dL/dy
Self-attention with h heads of size dh = d/h (PyTorch's nn.MultiheadAttention):
    [Q K V] = U W_qkv + b_qkv;  per example and head: P = softmax(Q K^T / sqrt(dh)) (entries
    j > i set to -inf first when causal), O = P V;  A = [O_1 .. O_h] W_o + b_o
    backward: dP = dO V^T, dV = P^T dO, dS = P * (dP - rowsum(P * dP)),
              dQ = dS K / sqrt(dh), dK = dS^T Q / sqrt(dh)
MLP: Z = U W_1 + b_1,  F = phi(Z) W_2 + b_2 with phi = relu or the exact (erf) gelu
    gelu(z) = z Phi(z),  gelu'(z) = Phi(z) + z phi(z)  (Phi, phi: standard normal cdf, pdf)
"""

from __future__ import annotations

import math

import numpy as np

from gradtui.engine.blocks import add_row, matrix
from gradtui.engine.exp32 import softmax_exp
from gradtui.engine.strided_gemm import gemm
from gradtui.engine.jit import kernel

LN_EPS = 1e-5
RELU, GELU = 0, 1
GELU_DEAD_BELOW = -3.0  # gelu'(z) is below 0.012 in magnitude for z < -3: "dead" for the statistic
INV_SQRT2 = 1.0 / math.sqrt(2.0)
INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)
LOG_BATCH = 32  # softmax rows per logarithm in the attention entropy (_softmax_rows)


@kernel
def layernorm_forward(X, g, beta, XH, R, Y):
    """Y = g * (X - mean) r + beta per row; keeps xhat in XH and r in R for the backward."""
    n, d = X.shape
    for i in range(n):
        s = 0.0
        for j in range(d):
            s += X[i, j]
        mu = s / d
        ss = 0.0
        for j in range(d):
            v = X[i, j] - mu
            ss += v * v
        r = 1.0 / np.sqrt(ss / d + LN_EPS)
        R[i] = r
        for j in range(d):
            xh = XH.dtype.type((X[i, j] - mu) * r)
            XH[i, j] = xh
            Y[i, j] = g[j] * xh + beta[j]  # as layernorm_output, in the row's own pass


@kernel(inline="always")
def layernorm_output(XH, g, beta, Y):
    """Y = g * xhat + beta (the forward pass's last step, also run again from a kept xhat)."""
    for i in range(XH.shape[0]):
        for j in range(XH.shape[1]):
            Y[i, j] = g[j] * XH[i, j] + beta[j]


@kernel
def layernorm_backward(DY, XH, R, g, dg, dbeta, DX, skip=None):
    """DX = dL/dX from DY = dL/dY, plus ``skip`` when given (the residual path's gradient, added
    in the same pass); adds dL/dg and dL/dbeta into dg, dbeta."""
    n, d = DY.shape
    for i in range(n):
        s1 = 0.0
        s2 = 0.0
        for j in range(d):
            dy = DY[i, j]
            dg[j] += dy * XH[i, j]
            dbeta[j] += dy
            gy = dy * g[j]
            s1 += gy
            s2 += gy * XH[i, j]
        r = R[i]
        if skip is None:
            for j in range(d):
                DX[i, j] = r * (DY[i, j] * g[j] - (s1 + XH[i, j] * s2) / d)
        else:
            for j in range(d):
                DX[i, j] = r * (DY[i, j] * g[j] - (s1 + XH[i, j] * s2) / d) + skip[i, j]


@kernel
def column_sums_into(D, out):
    """out[j] += sum_i D[i, j] (a bias gradient)."""
    for i in range(D.shape[0]):
        for j in range(D.shape[1]):
            out[j] += D[i, j]


@kernel(inline="always")
def _softmax_rows(S, scale, causal):
    """Each row i of S <- softmax(scale S[i]) (over j <= i, the rest set to 0, when causal);
    returns the rows' summed entropy -sum_j P_ij ln P_ij, from the softmax's own passes: with
    x_j = scale (s_j - max_k s_k) and e_j = exp(x_j), a row's is ln(sum e) - sum(e_j x_j) / sum e
    (the logarithms of up to LOG_BATCH rows' sums taken as one of their product, which stays
    below T^LOG_BATCH). Sums in S's precision; exp is gradtui.engine.exp32's."""
    T = S.shape[0]
    f = S.dtype.type
    scale = f(scale)
    entropy = 0.0
    product = 1.0
    for i in range(T):
        width = i + 1 if causal else T
        top = S[i, 0]  # the row's largest raw score: scale > 0, so scale top is the scaled one's
        for j in range(1, width):
            top = max(top, S[i, j])
        total = f(0.0)
        weighted = f(0.0)
        for j in range(width):
            x = (S[i, j] - top) * scale
            e = softmax_exp(x)
            S[i, j] = e
            total += e
            weighted += e * x
        for j in range(width, T):
            S[i, j] = 0.0
        inv = f(1.0) / total
        for j in range(width):
            S[i, j] *= inv
        entropy -= np.float64(weighted) / np.float64(total)
        product *= np.float64(total)
        if (i + 1) % LOG_BATCH == 0 or i == T - 1:
            entropy += np.log(product)
            product = 1.0
    return entropy


@kernel
def attention_forward(U, theta, w_qkv, b_qkv, w_o, T, heads, causal, QKV, P, O, A):
    """A = self-attention(U) without b_o (the caller adds it with the residual); keeps QKV = U W_qkv + b_qkv (N, 3d), P (B, h, T, T) and O (N, d).
    Head h of example b reads its Q, K and V where the projection wrote them (rows b T ..,
    columns h dh .. of each third) and writes its O likewise: no copies between layouts.
    Returns the summed entropy of every attention row (_softmax_rows)."""
    n, d = U.shape
    B = n // T
    dh = d // heads
    scale = 1.0 / np.sqrt(dh)
    np.dot(U, matrix(theta, w_qkv, d, 3 * d), QKV)
    add_row(QKV, theta[b_qkv : b_qkv + 3 * d])
    entropy = 0.0
    for b in range(B):
        for h in range(heads):
            q = b * T * 3 * d + h * dh
            p = (b * heads + h) * T * T
            gemm(False, True, T, T, dh, QKV, q, 3 * d, QKV, q + d, 3 * d, 0.0, P, p, T)
            entropy += _softmax_rows(P[b, h], scale, causal)
            gemm(False, False, T, dh, T, P, p, T, QKV, q + 2 * d, 3 * d, 0.0, O, b * T * d + h * dh, d)
    np.dot(O, matrix(theta, w_o, d, d), A)
    return entropy


@kernel
def attention_backward(DA, U, theta, grad, w_qkv, b_qkv, w_o, b_o, T, heads, QKV, P, O, DO, DQKV, DU, TT):
    """From DA = dL/dA: the attention's parameter gradients into ``grad`` and DU = dL/dU.
    The heads' output O = P V is computed again into the scratch O (cheaper than reading back
    one kept per block). Per example and head, in the layouts of attention_forward (DO = dL/dO (N, d), DQKV =
    dL/dQKV (N, 3d)): dP = dO V^T into the scratch TT (T, T), dV = P^T dO, TT <- dS, then
    dQ = dS K and dK = dS^T Q."""
    n, d = U.shape
    B = n // T
    dh = d // heads
    f = P.dtype.type
    scale = f(1.0 / np.sqrt(dh))
    for b in range(B):  # O = P V again, into the scratch O
        for h in range(heads):
            gemm(False, False, T, dh, T, P, (b * heads + h) * T * T, T, QKV, b * T * 3 * d + 2 * d + h * dh, 3 * d,
                 0.0, O, b * T * d + h * dh, d)
    np.dot(O.T, DA, matrix(grad, w_o, d, d))
    column_sums_into(DA, grad[b_o : b_o + d])
    np.dot(DA, matrix(theta, w_o, d, d).T, DO)
    for b in range(B):
        for h in range(heads):
            q = b * T * 3 * d + h * dh
            p = (b * heads + h) * T * T
            o = b * T * d + h * dh
            gemm(False, True, T, T, dh, DO, o, d, QKV, q + 2 * d, 3 * d, 0.0, TT, 0, T)  # dP
            gemm(True, False, T, dh, T, P, p, T, DO, o, d, 0.0, DQKV, q + 2 * d, 3 * d)  # dV
            Pb = P[b, h]
            for i in range(T):
                s = f(0.0)
                for j in range(T):
                    s += Pb[i, j] * TT[i, j]
                for j in range(T):
                    TT[i, j] = Pb[i, j] * (TT[i, j] - s) * scale
            gemm(False, False, T, dh, T, TT, 0, T, QKV, q + d, 3 * d, 0.0, DQKV, q, 3 * d)  # dQ
            gemm(True, False, T, dh, T, TT, 0, T, QKV, q, 3 * d, 0.0, DQKV, q + d, 3 * d)  # dK
    np.dot(U.T, DQKV, matrix(grad, w_qkv, d, 3 * d))
    column_sums_into(DQKV, grad[b_qkv : b_qkv + 3 * d])
    np.dot(DQKV, matrix(theta, w_qkv, d, 3 * d).T, DU)


@kernel(inline="always")
def _gelu(z):
    return 0.5 * z * (1.0 + math.erf(z * INV_SQRT2))


@kernel(inline="always")
def _bias_activate(Z, b, Hd, act, zmax):
    """Z += b and Hd = phi(Z) in one pass; zmax[j] = the largest Z[i, j] (for dead_fraction)."""
    zmax[:] = -np.inf
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            Hd[i, j] = (z if z > 0.0 else 0.0) if act == RELU else _gelu(z)
            zmax[j] = max(zmax[j], z)


@kernel
def mlp_forward(U, theta, w1, b1, w2, act, Z, Hd, F, zmax):
    """F = phi(U W_1 + b_1) W_2, without b_2 (the caller adds it with the residual); keeps Z,
    phi(Z) goes through the scratch Hd; zmax (m) gets each hidden unit's largest Z over the rows."""
    n, d = U.shape
    m = Z.shape[1]
    np.dot(U, matrix(theta, w1, d, m), Z)
    _bias_activate(Z, theta[b1 : b1 + m], Hd, act, zmax)
    np.dot(Hd, matrix(theta, w2, m, d), F)


@kernel
def mlp_backward(DF, U, theta, grad, w1, b1, w2, b2, act, Z, Hd, DZ, DU):
    """From DF = dL/dF: the MLP's parameter gradients into ``grad`` and DU = dL/dU. phi(Z) is
    computed again into the scratch Hd: keeping one per block made the step's working set
    larger and the whole step 5-8% slower (benchmarks.bench_transformer's two sizes), and
    handing BLAS the kept Z (relu's output kept in place of Z) made the product with it 1.7x
    slower (an operand no longer in cache). phi'(Z) multiplies DZ in the pass that sums the
    b_1 gradient."""
    n, d = U.shape
    m = Z.shape[1]
    for i in range(n):
        for j in range(m):
            z = Z[i, j]
            Hd[i, j] = (z if z > 0.0 else 0.0) if act == RELU else _gelu(z)
    np.dot(Hd.T, DF, matrix(grad, w2, m, d))
    column_sums_into(DF, grad[b2 : b2 + d])
    np.dot(DF, matrix(theta, w2, m, d).T, DZ)
    db1 = grad[b1 : b1 + m]
    f = DZ.dtype.type
    for i in range(n):
        for j in range(m):
            z = Z[i, j]
            if act == RELU:
                v = DZ[i, j] if z > 0.0 else f(0.0)
            else:
                v = f(DZ[i, j] * (0.5 * (1.0 + math.erf(z * INV_SQRT2)) + z * INV_SQRT2PI * np.exp(-0.5 * z * z)))
            DZ[i, j] = v
            db1[j] += v
    np.dot(U.T, DZ, matrix(grad, w1, d, m))
    np.dot(DZ, matrix(theta, w1, d, m).T, DU)
