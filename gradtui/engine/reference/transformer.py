"""The reference tier's Transformer: gradtui.engine.transformer's encoder in plain NumPy.

Same layout, same maths and the same statistics as the fused kernel (transformer_kernel and
transformer_ops document them): the residual stream X (N, d) with N = batch x T rows, each
sub-layer f (attention, then MLP) as Post-LN  X' = LN(r X + f(X)),  Pre-LN  X' = r X + f(LN(X))
or  X' = r X + f(X);  a final LayerNorm before the head under Pre-LN; mean cross-entropy over the
scored positions. Attention runs on (B, h, T, dh) arrays, every product over the whole batch.
It trains a Transformer from the first second while the kernels compile (gradtui.engine.tiers).
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from gradtui.engine.reference.twin import KernelTwin
from gradtui.engine.transformer import ENTROPY, EVAL_CHUNK, SPREAD, TransformerNetwork
from gradtui.engine.transformer_kernel import NORM_POST, NORM_PRE
from gradtui.engine.transformer_ops import GELU_DEAD_BELOW, LN_EPS, RELU

INV_SQRT2 = 1.0 / np.sqrt(2.0)
INV_SQRT2PI = 1.0 / np.sqrt(2.0 * np.pi)


def _layernorm(X, g, beta):
    """(Y, xhat, r): Y = g xhat + beta, xhat = (X - mean) r, r = 1/sqrt(var + eps) per row."""
    centred = X - X.mean(axis=1, keepdims=True)
    r = 1.0 / np.sqrt(np.mean(centred * centred, axis=1) + LN_EPS)
    xhat = centred * r[:, None]
    return g * xhat + beta, xhat, r


def _layernorm_backward(DY, xhat, r, g, dg, dbeta):
    """dL/dX from DY = dL/dY; adds dL/dg and dL/dbeta into dg, dbeta."""
    dg += np.sum(DY * xhat, axis=0)
    dbeta += np.sum(DY, axis=0)
    gy = DY * g
    d = DY.shape[1]
    return r[:, None] * (gy - (gy.sum(axis=1, keepdims=True) + xhat * np.sum(gy * xhat, axis=1, keepdims=True)) / d)


def _moments(A) -> tuple[float, float]:
    return float(np.mean(A, dtype=np.float64)), float(np.std(A, dtype=np.float64))


def _spread(X, T) -> float:
    """Mean over examples of ||X_b - 1 xbar_b^T||_F / ||X_b||_F."""
    Xb = X.reshape(-1, T, X.shape[1]).astype(np.float64)
    sq = np.sum(Xb * Xb, axis=(1, 2))
    mean = Xb.mean(axis=1)
    around = np.maximum(sq - T * np.sum(mean * mean, axis=1), 0.0)
    return float(np.mean(np.where(sq > 0, np.sqrt(around / np.where(sq > 0, sq, 1.0)), 0.0)))


def _entropy(P) -> float:
    """Mean over examples, heads and query rows of -sum_j P_ij ln P_ij."""
    P = P.astype(np.float64)
    logs = np.log(np.where(P > 0, P, 1.0))
    return float(-np.sum(P * logs) / (P.shape[0] * P.shape[1] * P.shape[2]))


class ReferenceTransformer(KernelTwin):
    """Plain NumPy twin of a TransformerNetwork (``net``), with its layout."""

    def __init__(self, net):
        super().__init__(net)
        m = net.cfg.model
        self.T, self.heads, self.norm, self.act = net.seq_len, net.heads, net.norm, net.act
        self.residual, self.causal = bool(m.residual), bool(m.causal)

    def _p(self, theta, name):
        return self.layout.view(theta, name)

    # ------------------------------------------------------------------ sub-layers
    def _attention(self, U, theta, prefix):
        """A = self-attention(U) and its cache (U, Q, K, V, P, O)."""
        n, d = U.shape
        T, h = self.T, self.heads
        dh = d // h
        QKV = U @ self._p(theta, f"{prefix}.W_qkv") + self._p(theta, f"{prefix}.b_qkv")
        Q, K, V = (QKV[:, i * d : (i + 1) * d].reshape(-1, T, h, dh).transpose(0, 2, 1, 3) for i in range(3))
        S = Q @ K.transpose(0, 1, 3, 2) / np.sqrt(dh).astype(U.dtype)
        if self.causal:
            S = np.where(np.triu(np.ones((T, T), bool), 1), -np.inf, S)
        S = np.exp(S - S.max(axis=-1, keepdims=True))
        P = S / S.sum(axis=-1, keepdims=True)
        O = (P @ V).transpose(0, 2, 1, 3).reshape(n, d)
        A = O @ self._p(theta, f"{prefix}.W_o") + self._p(theta, f"{prefix}.b_o")
        return A, (U, Q, K, V, P, O)

    def _attention_backward(self, DA, cache, theta, grad, prefix):
        U, Q, K, V, P, O = cache
        n, d = U.shape
        T, h = self.T, self.heads
        dh = d // h
        self._p(grad, f"{prefix}.W_o")[:] += O.T @ DA
        self._p(grad, f"{prefix}.b_o")[:] += DA.sum(axis=0)
        DO = (DA @ self._p(theta, f"{prefix}.W_o").T).reshape(-1, T, h, dh).transpose(0, 2, 1, 3)
        dP = DO @ V.transpose(0, 1, 3, 2)
        dV = P.transpose(0, 1, 3, 2) @ DO
        dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True)) / np.sqrt(dh).astype(U.dtype)
        dQ, dK = dS @ K, dS.transpose(0, 1, 3, 2) @ Q
        DQKV = np.concatenate([a.transpose(0, 2, 1, 3).reshape(n, d) for a in (dQ, dK, dV)], axis=1)
        self._p(grad, f"{prefix}.W_qkv")[:] += U.T @ DQKV
        self._p(grad, f"{prefix}.b_qkv")[:] += DQKV.sum(axis=0)
        return DQKV @ self._p(theta, f"{prefix}.W_qkv").T

    def _mlp(self, U, theta, prefix):
        Z = U @ self._p(theta, f"{prefix}.W_1") + self._p(theta, f"{prefix}.b_1")
        H = np.maximum(Z, 0) if self.act == RELU else (0.5 * Z * (1.0 + erf(Z * INV_SQRT2))).astype(Z.dtype)
        return H @ self._p(theta, f"{prefix}.W_2") + self._p(theta, f"{prefix}.b_2"), (U, Z, H)

    def _mlp_backward(self, DF, cache, theta, grad, prefix):
        U, Z, H = cache
        self._p(grad, f"{prefix}.W_2")[:] += H.T @ DF
        self._p(grad, f"{prefix}.b_2")[:] += DF.sum(axis=0)
        DZ = DF @ self._p(theta, f"{prefix}.W_2").T
        if self.act == RELU:
            DZ = np.where(Z > 0, DZ, 0)
        else:
            DZ = DZ * (0.5 * (1.0 + erf(Z * INV_SQRT2)) + Z * INV_SQRT2PI * np.exp(-0.5 * Z * Z)).astype(Z.dtype)
        self._p(grad, f"{prefix}.W_1")[:] += U.T @ DZ
        self._p(grad, f"{prefix}.b_1")[:] += DZ.sum(axis=0)
        return DZ @ self._p(theta, f"{prefix}.W_1").T

    # ------------------------------------------------------------------ the network
    def _forward(self, theta, tokens, stats):
        """Logits (N, V) and the caches; statistics of the forward pass into ``stats`` when given."""
        T, L = self.T, self.net.depth
        dt = self.net.dtype
        X = (self._p(theta, "embed.E")[tokens] + np.tile(self._p(theta, "embed.P")[:T], (len(tokens) // T, 1))).astype(dt)
        if stats is not None:
            stats["act_mean"][0], stats["act_std"][0] = _moments(X)
        caches = []
        for s in range(2 * L):
            l, sub = s // 2, ("attn", "mlp")[s % 2]
            prefix = f"block.{l}.{sub}"
            g, beta = self._p(theta, f"{prefix}.ln_g"), self._p(theta, f"{prefix}.ln_b")
            pre = _layernorm(X, g, beta) if self.norm == NORM_PRE else None
            U = pre[0] if pre else X
            F, cache = self._attention(U, theta, prefix) if sub == "attn" else self._mlp(U, theta, prefix)
            if self.residual:
                F = F + X
            post = _layernorm(F, g, beta) if self.norm == NORM_POST else None
            X = post[0] if post else F
            caches.append((pre, cache, post))
            if stats is not None:
                stats["act_mean"][s + 1], stats["act_std"][s + 1] = _moments(X)
                stats["dead_fraction"][s + 1] = 0.0
                if sub == "mlp":
                    Z = cache[1]
                    limit = 0.0 if self.act == RELU else GELU_DEAD_BELOW
                    stats["dead_fraction"][s + 1] = 1.0 - np.mean(np.any(Z > limit, axis=0))
                    stats[SPREAD][l] = _spread(X, T)
                    stats[ENTROPY][l] = _entropy(caches[-2][1][4])
        final = _layernorm(X, self._p(theta, "head.ln_g"), self._p(theta, "head.ln_b")) if self.norm == NORM_PRE else None
        top = final[0] if final else X
        logits = top @ self._p(theta, "head.W") + self._p(theta, "head.b")
        if stats is not None:
            stats["act_mean"][2 * L + 1], stats["act_std"][2 * L + 1] = _moments(logits)
        return logits, caches, final, top

    @staticmethod
    def _cross_entropy(logits, targets):
        """(mean cross-entropy over scored rows, d(mean)/d(logits), right predictions per row)."""
        scored = targets >= 0
        count = max(int(scored.sum()), 1)
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        z = probs.sum(axis=1, keepdims=True)
        probs /= z
        rows = np.flatnonzero(scored)
        loss = float(np.sum(np.log(z[rows, 0]) - shifted[rows, targets[rows]], dtype=np.float64)) / count
        dlogits = probs / count
        dlogits[rows, targets[rows]] -= 1.0 / count
        dlogits[~scored] = 0.0
        right = scored & (np.argmax(logits, axis=1) == targets)
        return loss, dlogits, right

    def loss_and_grad(self, theta, grad, x, y, train: bool, stats) -> float:
        """Forward and backward on token sequences x (B, T) with targets y (B, T) (-1: not scored)."""
        tokens, targets = self.net._flat(x, y)
        T, L, d = self.T, self.net.depth, self.net.width
        logits, caches, final, top = self._forward(theta, tokens, stats)
        loss, dlogits, _ = self._cross_entropy(logits, targets)
        grad[:] = 0.0
        if stats is not None:
            stats["saturation"][:] = 0.0
            stats["delta_norm"][2 * L + 1] = np.linalg.norm(dlogits.astype(np.float64))
        self._p(grad, "head.W")[:] += top.T @ dlogits
        self._p(grad, "head.b")[:] += dlogits.sum(axis=0)
        DX = dlogits @ self._p(theta, "head.W").T
        if final:
            DX = _layernorm_backward(DX, final[1], final[2], self._p(theta, "head.ln_g"),
                                     self._p(grad, "head.ln_g"), self._p(grad, "head.ln_b"))
        for s in range(2 * L - 1, -1, -1):
            l, sub = s // 2, ("attn", "mlp")[s % 2]
            prefix = f"block.{l}.{sub}"
            pre, cache, post = caches[s]
            g, dg, dbeta = self._p(theta, f"{prefix}.ln_g"), self._p(grad, f"{prefix}.ln_g"), self._p(grad, f"{prefix}.ln_b")
            if stats is not None:
                stats["delta_norm"][s + 1] = np.linalg.norm(DX.astype(np.float64))
            DF = _layernorm_backward(DX, post[1], post[2], g, dg, dbeta) if post else DX
            DU = (self._attention_backward if sub == "attn" else self._mlp_backward)(DF, cache, theta, grad, prefix)
            DX = _layernorm_backward(DU, pre[1], pre[2], g, dg, dbeta) if pre else DU
            if self.residual:
                DX = DX + DF
        if stats is not None:
            stats["delta_norm"][0] = np.linalg.norm(DX.astype(np.float64))
        np.add.at(self._p(grad, "embed.E"), tokens, DX)
        self._p(grad, "embed.P")[:T] += DX.reshape(-1, T, d).sum(axis=0)
        return loss

    def evaluate_positions(self, theta, x, y) -> tuple[float, np.ndarray]:
        """Mean cross-entropy over scored positions and the accuracy at each position."""
        T = self.T
        correct, scored = np.zeros(T), np.zeros(T)
        total, count = 0.0, 0
        for start in range(0, len(x), EVAL_CHUNK):
            tokens, targets = self.net._flat(x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK])
            logits, *_ = self._forward(theta, tokens, None)
            loss, _, right = self._cross_entropy(logits, targets)
            n = int(np.sum(targets >= 0))
            total += loss * n
            count += n
            correct += right.reshape(-1, T).sum(axis=0)
            scored += (targets.reshape(-1, T) >= 0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_position = np.where(scored > 0, correct / np.maximum(scored, 1), np.nan)
        return total / max(count, 1), per_position

    evaluate = TransformerNetwork.evaluate  # the same summary of evaluate_positions
