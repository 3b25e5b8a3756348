"""The reference tier's recurrent nets: gradtui.engine.recurrent's RNN, LSTM and GRU in plain NumPy.

Same layout, same maths and the same statistics as the fused kernels (rnn_kernel,
lstm_kernel, gated_kernel, seq_kernel document them): stacked layers over time-major arrays, a linear
readout of the top layer's last R steps, mean squared error or cross-entropy, full BPTT.
Only the recurrent products run step by step; the input projection and the weight
gradients are one product each over all T B rows.
"""

from __future__ import annotations

import numpy as np

from gradtui.engine.reference.numpy_mlp import activation
from gradtui.engine.reference.numpy_rnn import fro, sigmoid
from gradtui.engine.reference.twin import KernelTwin
from gradtui.engine.rnn_kernel import SIG_SAT, TANH_SAT

TANH_BLOCK = {"lstm": 2, "gru": 2}  # g in [i, f, g, o]; n in [r, u, n]


def _mean_std(a) -> tuple[float, float]:
    return float(np.mean(a, dtype=np.float64)), float(np.std(a, dtype=np.float64))


class ReferenceRecurrent(KernelTwin):
    """Plain NumPy twin of a RecurrentNetwork (``net``), with its layout."""

    def __init__(self, net):
        super().__init__(net)
        self.kind = net.kind
        m = net.cfg.model
        self.activation = m.activation if net.kind == "rnn" else "tanh"
        self.H, self.G = net.width, net.n_gates

    # ------------------------------------------------------------------ forward
    def _layers(self, theta):
        v = lambda name: self.layout.view(theta, name)  # noqa: E731
        return [{k: v(f"rnn.{l}.{k}") for k in ("W_ih", "W_hh", "b") + (("b_hn",) if self.kind == "gru" else ())}
                for l in range(self.net.depth)]

    def _forward(self, theta, XT):
        """Every layer over the whole sequence; returns per-layer caches and the readout logits (R, B, K)."""
        H, kind, dt = self.H, self.kind, self.net.dtype
        T, B, _ = XT.shape
        caches, inp = [], XT
        for p in self._layers(theta):
            xw = inp @ p["W_ih"] + p["b"]  # (T, B, G H): the input projection of every step at once
            hs = np.zeros((T + 1, B, H), dt)
            ga = np.empty((T, B, self.G * H), dt)  # phi' (rnn) or the gate values
            cs = np.zeros((T + 1, B, H), dt) if kind == "lstm" else None
            aux = np.empty((T, B, H), dt) if kind != "rnn" else None  # tanh(c_t) or h W_hn + b_hn
            W_hh = p["W_hh"]
            for t in range(T):
                a = xw[t] + hs[t] @ W_hh if kind != "gru" else None
                if kind == "rnn":
                    hs[t + 1], ga[t] = activation(self.activation, a, 0.0, 1.0)
                elif kind == "lstm":
                    ga[t, :, :2 * H] = sigmoid(a[:, :2 * H])
                    ga[t, :, 2 * H:3 * H] = np.tanh(a[:, 2 * H:3 * H])
                    ga[t, :, 3 * H:] = sigmoid(a[:, 3 * H:])
                    i, f, g, o = (ga[t, :, k * H:(k + 1) * H] for k in range(4))
                    cs[t + 1] = f * cs[t] + i * g
                    aux[t] = np.tanh(cs[t + 1])
                    hs[t + 1] = o * aux[t]
                else:
                    ah = hs[t] @ W_hh
                    ga[t, :, :2 * H] = sigmoid(xw[t, :, :2 * H] + ah[:, :2 * H])
                    aux[t] = ah[:, 2 * H:] + p["b_hn"]
                    n = np.tanh(xw[t, :, 2 * H:] + ga[t, :, :H] * aux[t])
                    ga[t, :, 2 * H:] = n
                    hs[t + 1] = n + ga[t, :, H:2 * H] * (hs[t] - n)
            caches.append(dict(inp=inp, p=p, hs=hs, ga=ga, cs=cs, aux=aux))
            inp = hs[1:]
        R = self.net.readout_steps
        logits = inp[T - R:] @ self.layout.view(theta, "output.W") + self.layout.view(theta, "output.b")
        return caches, logits

    def _targets(self, x, y):
        XT = np.ascontiguousarray(np.swapaxes(np.asarray(x, self.net.dtype), 0, 1))
        y = np.asarray(y)
        if self.net.classification:
            return XT, np.swapaxes(y, 0, 1).astype(np.int64)
        if y.ndim == 2:
            return XT, y.astype(self.net.dtype)[None]
        return XT, np.swapaxes(y, 0, 1).astype(self.net.dtype)

    def _loss(self, logits, target):
        """Loss, dL/dlogits and the number of correct read-out predictions (seq_kernel.seq_loss)."""
        Rn, B, K = logits.shape
        if self.net.classification:
            scale = 1.0 / (B * self.net.class_steps)
            z = logits.astype(np.float64)
            z = z - z.max(axis=2, keepdims=True)
            log_s = np.log(np.exp(z).sum(axis=2, keepdims=True))
            picked = np.take_along_axis(z, target[..., None], axis=2)
            loss = float(np.sum(log_s - picked)) * scale
            d = np.exp(z - log_s) * scale
            np.put_along_axis(d, target[..., None], np.take_along_axis(d, target[..., None], axis=2) - scale, axis=2)
            correct = int(np.sum(np.argmax(logits, axis=2) == target))
            return loss, d.astype(logits.dtype), correct
        diff = logits - target
        count = diff.size
        return float(np.sum(np.square(diff, dtype=np.float64))) / count, diff * diff.dtype.type(2.0 / count), 0

    # ----------------------------------------------------------------- backward
    def loss_and_grad(self, theta, grad, x, y, train: bool, stats) -> float:
        """Forward, loss and BPTT on (x, y) into ``grad``; the statistics into ``stats`` when given."""
        XT, target = self._targets(x, y)
        caches, logits = self._forward(theta, XT)
        loss, dlog, _ = self._loss(logits, target)
        H, kind, L = self.H, self.kind, self.net.depth
        T, B = XT.shape[0], XT.shape[1]
        Rn = logits.shape[0]
        W_out = self.layout.view(theta, "output.W")
        top = caches[-1]["hs"]
        self.layout.view(grad, "output.W")[:] = top[T + 1 - Rn:].reshape(-1, H).T @ dlog.reshape(Rn * B, -1)
        self.layout.view(grad, "output.b")[:] = dlog.sum(axis=(0, 1))
        dh_in = np.zeros((T, B, H), XT.dtype)
        dh_in[T - Rn:] = dlog @ W_out.T
        if stats is not None:
            self._forward_stats(caches, logits, stats)
            stats["delta_norm"][L] = fro(dlog)
        for l in range(L - 1, -1, -1):
            c = caches[l]
            time_norm = stats["time_delta_norm"] if stats is not None and l == L - 1 else None
            da, dr, db_hn = self._bptt(c, dh_in, time_norm)
            name = f"rnn.{l}"
            inp = c["inp"]
            self.layout.view(grad, f"{name}.W_ih")[:] = inp.reshape(T * B, -1).T @ da.reshape(T * B, -1)
            self.layout.view(grad, f"{name}.W_hh")[:] = c["hs"][:T].reshape(T * B, H).T @ dr.reshape(T * B, -1)
            self.layout.view(grad, f"{name}.b")[:] = da.sum(axis=(0, 1))
            if kind == "gru":
                self.layout.view(grad, f"{name}.b_hn")[:] = db_hn
            if stats is not None:
                stats["delta_norm"][l] = fro(da)
            dh_in = da @ c["p"]["W_ih"].T
        return loss

    def _bptt(self, c, dh_in, time_norm):
        """dL/da for every step (input side DA, recurrent side DR, equal but for the GRU) and db_hn."""
        H, kind = self.H, self.kind
        ga, hs, W_hh = c["ga"], c["hs"], c["p"]["W_hh"]
        T, B = ga.shape[0], ga.shape[1]
        da = np.empty_like(ga)
        dr = da if kind != "gru" else np.empty_like(ga)
        dh_next = np.zeros((B, H), ga.dtype)
        dc = np.zeros((B, H), ga.dtype)
        db_hn = np.zeros(H, ga.dtype)
        for t in range(T - 1, -1, -1):
            dh = dh_in[t] + dh_next
            if time_norm is not None:
                time_norm[t] = fro(dh)
            if kind == "rnn":
                da[t] = dh * ga[t]
            elif kind == "lstm":
                i, f, g, o = (ga[t, :, k * H:(k + 1) * H] for k in range(4))
                tc = c["aux"][t]
                dc = dc + dh * o * (1 - tc * tc)
                da[t] = np.concatenate([dc * g * i * (1 - i), dc * c["cs"][t] * f * (1 - f),
                                        dc * i * (1 - g * g), dh * tc * o * (1 - o)], axis=1)
                dc = dc * f
            else:
                r, u, n = (ga[t, :, k * H:(k + 1) * H] for k in range(3))
                dn = dh * (1 - u) * (1 - n * n)
                drr = dn * c["aux"][t] * r * (1 - r)
                du = dh * (hs[t] - n) * u * (1 - u)
                da[t] = np.concatenate([drr, du, dn], axis=1)
                dr[t] = np.concatenate([drr, du, dn * r], axis=1)
                db_hn += (dn * r).sum(axis=0)
            dh_next = dr[t] @ W_hh.T
            if kind == "gru":
                dh_next += dh * ga[t, :, H:2 * H]
        return da, dr, db_hn

    # -------------------------------------------------------------- statistics
    def _forward_stats(self, caches, logits, stats) -> None:
        """Per-layer statistics (rnn_kernel.rnn_step_stats, lstm_kernel.lstm_step_stats, gated_kernel.gated_stats) and
        the readout's."""
        H, L = self.H, self.net.depth
        for l, c in enumerate(caches):
            stats["act_mean"][l], stats["act_std"][l] = _mean_std(c["hs"][1:])
            ga = c["ga"]
            if self.kind == "rnn":
                stats["dead_fraction"][l] = np.mean(np.all(ga == 0, axis=(0, 1)))
                stats["saturation"][l] = np.mean(ga < self.net.sat_limit)
                continue
            blocks = ga.reshape(ga.shape[0], ga.shape[1], self.G, H)
            tanh_block = TANH_BLOCK[self.kind]
            sat = blocks * (1 - blocks) < SIG_SAT
            sat[:, :, tanh_block] = 1 - blocks[:, :, tanh_block] ** 2 < TANH_SAT
            stats["saturation"][l] = np.mean(sat)
            stats["dead_fraction"][l] = np.mean(np.all(sat, axis=(0, 1, 2)))
            if self.kind == "lstm":
                stats["forget_gate_mean"][l] = np.mean(blocks[:, :, 1], dtype=np.float64)
        stats["act_mean"][L], stats["act_std"][L] = _mean_std(logits)
        stats["dead_fraction"][L] = stats["saturation"][L] = 0.0

    def evaluate(self, theta, x, y) -> tuple[float, float | None]:
        """Mean loss over the examples and, for classification, the share of read-out steps predicted right."""
        chunk = max(1, 16384 // self.net.seq_len)
        total, correct = 0.0, 0
        for start in range(0, len(x), chunk):
            XT, target = self._targets(x[start:start + chunk], y[start:start + chunk])
            _, logits = self._forward(theta, XT)
            loss, _, ok = self._loss(logits, target)
            total += loss * XT.shape[1]
            correct += ok
        n = len(x)
        return total / n, (correct / (n * self.net.readout_steps) if self.net.classification else None)
