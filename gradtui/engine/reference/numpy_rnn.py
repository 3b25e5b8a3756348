"""Plain NumPy reference recurrent nets (vanilla tanh RNN, LSTM, GRU) with full BPTT.

Used as the speed baseline for gradtui's recurrent engine and as the tests' independent
computation of its gradients and per-time-step statistics. Import it through
:mod:`gradtui.engine.reference.numpy_mlp`, which re-exports :class:`NumpyRNN`.
"""

from __future__ import annotations

import numpy as np

KINDS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def fro(a: np.ndarray) -> float:
    """Frobenius (global L2) norm, accumulated in float64."""
    v = np.asarray(a, np.float64).ravel()
    return float(np.sqrt(v @ v))


def xavier_uniform(fan_in: int, fan_out: int, rng: np.random.Generator, dtype) -> np.ndarray:
    """W ~ U[-s, s] with s = sqrt(6 / (fan_in + fan_out)), i.e. Var(W) = 2 / (fan_in + fan_out)."""
    s = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-s, s, size=(fan_in, fan_out)).astype(dtype)


def orthogonal(n: int, rng: np.random.Generator, dtype) -> np.ndarray:
    """A uniformly random n x n orthogonal matrix (QR of a Gaussian, signs fixed by diag(R))."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.sign(np.diag(r))).astype(dtype)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z), computed as (1 + tanh(z/2)) / 2 so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class NumpyRNN:
    """One recurrent layer plus a linear readout of the last hidden state.

    x has shape (B, T, n_in); h_0 = c_0 = 0; H = ``hidden``. Gate pre-activations are
    column blocks of ``x_t W_ih + h_{t-1} W_hh + b`` (W_ih (n_in, G H), W_hh (H, G H)):

    rnn  (G = 1): h_t = tanh(x_t W_ih + h_{t-1} W_hh + b)
    lstm (G = 4, blocks [i, f, g, o]): i, f, o = sigmoid, g = tanh,
                  c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)
    gru  (G = 3, blocks [r, u, n], PyTorch convention, b_hn (H,) stored separately):
                  r = s(x W_ir + h W_hr + b_r),  u = s(x W_iu + h W_hu + b_u),
                  n = tanh(x W_in + b_in + r * (h W_hn + b_hn)),  h_t = (1 - u) n + u h_{t-1}
    Readout and loss (the adding problem): yhat = h_T W_out + b_out,
                  L = (1 / (B n_out)) sum (yhat - y)^2, y of shape (B, n_out).

    ``params`` keys: "cell.W_ih", "cell.W_hh", "cell.b", "cell.b_hn" (gru only), "output.W",
    "output.b". Init: W_ih Xavier-uniform per gate block, W_hh an orthogonal H x H matrix per
    gate block, biases 0 except the LSTM forget-gate bias at ``forget_bias``, W_out Xavier.
    ``seq_len`` is the default T (x may have any T >= 1).
    """

    def __init__(self, kind, hidden, n_in, n_out, seq_len, dtype=np.float32, seed=0, forget_bias=1.0):
        if kind not in KINDS:
            raise ValueError(f"unknown recurrent kind {kind!r}; expected one of {KINDS}")
        self.kind, self.hidden, self.n_in, self.n_out = kind, int(hidden), int(n_in), int(n_out)
        self.seq_len, self.dtype = int(seq_len), np.dtype(dtype)
        H, G = self.hidden, GATES[kind]
        rng = np.random.default_rng(seed)
        p = {
            "cell.W_ih": np.concatenate([xavier_uniform(n_in, H, rng, self.dtype) for _ in range(G)], axis=1),
            "cell.W_hh": np.concatenate([orthogonal(H, rng, self.dtype) for _ in range(G)], axis=1),
            "cell.b": np.zeros(G * H, self.dtype),
        }
        if kind == "lstm":
            p["cell.b"][H:2 * H] = forget_bias
        if kind == "gru":
            p["cell.b_hn"] = np.zeros(H, self.dtype)
        p["output.W"] = xavier_uniform(H, n_out, rng, self.dtype)
        p["output.b"] = np.zeros(n_out, self.dtype)
        self.params = p

    # ------------------------------------------------------------------ forward
    def forward(self, x, h_shift=None):
        """Run the sequence; return (yhat, cache). ``h_shift`` ({t: (B, H) array}, t = 0..T-1
        for h_1..h_T) is added to h_t before it is used; the gradient check uses it to probe
        dL/dh_t."""
        p, H, kind = self.params, self.hidden, self.kind
        x = np.asarray(x, self.dtype)
        B, T, _ = x.shape
        # Input contributions for every step at once: (T, B, G H).
        xw = np.ascontiguousarray((x @ p["cell.W_ih"]).transpose(1, 0, 2)) + p["cell.b"]
        hs = np.zeros((T + 1, B, H), self.dtype)  # hs[t] = h_t, hs[0] = h_0 = 0
        gates = np.zeros((T, B, GATES[kind] * H), self.dtype)  # post-nonlinearity gate values
        cs = np.zeros((T + 1, B, H), self.dtype) if kind == "lstm" else None
        hn = np.zeros((T, B, H), self.dtype) if kind == "gru" else None  # h W_hn + b_hn
        W_hh = p["cell.W_hh"]
        for t in range(T):
            h = hs[t]
            if kind == "rnn":
                h_new = np.tanh(xw[t] + h @ W_hh)
                gates[t] = h_new
            elif kind == "lstm":
                a = xw[t] + h @ W_hh
                i, f, g, o = (sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]),
                              np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:]))
                cs[t + 1] = f * cs[t] + i * g
                h_new = o * np.tanh(cs[t + 1])
                gates[t] = np.concatenate([i, f, g, o], axis=1)
            else:
                ah = h @ W_hh
                r = sigmoid(xw[t, :, :H] + ah[:, :H])
                u = sigmoid(xw[t, :, H:2 * H] + ah[:, H:2 * H])
                hn[t] = ah[:, 2 * H:] + p["cell.b_hn"]
                n = np.tanh(xw[t, :, 2 * H:] + r * hn[t])
                h_new = (1 - u) * n + u * h
                gates[t] = np.concatenate([r, u, n], axis=1)
            if h_shift is not None and t in h_shift:
                h_new = h_new + h_shift[t]
            hs[t + 1] = h_new
        yhat = hs[T] @ p["output.W"] + p["output.b"]
        return yhat, dict(x=x, hs=hs, cs=cs, gates=gates, hn=hn)

    # ----------------------------------------------------------------- backward
    def _backward(self, x, y, h_shift=None):
        """Forward + BPTT. Returns (loss, grads, time_delta_norm, cache)."""
        p, H, kind = self.params, self.hidden, self.kind
        yhat, c = self.forward(x, h_shift)
        hs, gates = c["hs"], c["gates"]
        T, B = gates.shape[0], gates.shape[1]
        diff = yhat - np.asarray(y, self.dtype).reshape(yhat.shape)
        loss = float(np.mean(np.square(diff, dtype=np.float64)))
        dyhat = diff * self.dtype.type(2.0 / diff.size)
        grads = {"output.W": hs[T].T @ dyhat, "output.b": dyhat.sum(axis=0)}
        W_hh = p["cell.W_hh"]
        # d_in[t]: dL/d(input-side pre-activations) of step t; d_rec[t]: dL/d(h_{t-1} W_hh)
        # (they differ only for the GRU's n block, where the recurrent part is scaled by r).
        d_in = np.zeros_like(gates)
        d_rec = d_in if kind != "gru" else np.zeros_like(gates)
        time_delta_norm = np.zeros(T)
        dh = dyhat @ p["output.W"].T  # dL/dh_T
        dc = np.zeros((B, H), self.dtype)  # dL/dc_t flowing back through c_{t+1} (lstm)
        db_hn = np.zeros(H, self.dtype)
        for t in reversed(range(T)):
            time_delta_norm[t] = fro(dh)  # total dL/dh_{t+1}, i.e. for h_1..h_T
            h_prev = hs[t]
            if kind == "rnn":
                d_in[t] = dh * (1 - gates[t] * gates[t])
                dh_direct = 0
            elif kind == "lstm":
                i, f, g, o = (gates[t, :, k * H:(k + 1) * H] for k in range(4))
                tc = np.tanh(c["cs"][t + 1])
                dc = dc + dh * o * (1 - tc * tc)
                d_in[t] = np.concatenate([dc * g * i * (1 - i), dc * c["cs"][t] * f * (1 - f),
                                          dc * i * (1 - g * g), dh * tc * o * (1 - o)], axis=1)
                dc = dc * f
                dh_direct = 0
            else:
                r, u, n = (gates[t, :, k * H:(k + 1) * H] for k in range(3))
                dn = dh * (1 - u) * (1 - n * n)  # dL/d(n pre-activation)
                dr = dn * c["hn"][t] * r * (1 - r)
                du = dh * (h_prev - n) * u * (1 - u)
                d_in[t] = np.concatenate([dr, du, dn], axis=1)
                dhn = dn * r  # dL/d(h W_hn + b_hn)
                d_rec[t] = np.concatenate([dr, du, dhn], axis=1)
                db_hn += dhn.sum(axis=0)
                dh_direct = dh * u
            dh = d_rec[t] @ W_hh.T + dh_direct
        xs = c["x"].transpose(1, 0, 2).reshape(T * B, -1)  # (T B, n_in), step-major like d_in
        grads["cell.W_ih"] = xs.T @ d_in.reshape(T * B, -1)
        grads["cell.W_hh"] = hs[:T].reshape(T * B, H).T @ d_rec.reshape(T * B, -1)
        grads["cell.b"] = d_in.sum(axis=(0, 1))
        if kind == "gru":
            grads["cell.b_hn"] = db_hn
        return loss, grads, time_delta_norm, c

    def loss_and_grads(self, x, y):
        """Return (L, {name: dL/dparam}) without changing the parameters."""
        loss, grads, _, _ = self._backward(x, y)
        return loss, grads

    def step(self, x, y, lr):
        """One full-BPTT SGD step p <- p - lr dL/dp; returns the statistics.

        loss             L before the update
        grad_norms       {param name: ||dL/dparam||_F}
        grad_norm        per weight layer [recurrent cell, output]: the cell's entry is
                         sqrt(||dL/dW_ih||^2 + ||dL/dW_hh||^2), the output's ||dL/dW_out||
        weight_norm      same layers, ||W||_F after the update
        update_ratio     same layers, ||W_new - W_old||_F / ||W_old||_F
        grad_norm_total  global L2 norm over all parameter gradients
        time_delta_norm  (T,) ||dL/dh_t||_F over the batch for t = 1..T (the total derivative:
                         through the readout and all later steps)
        """
        loss, grads, tdn, _ = self._backward(x, y)
        layers = (("cell.W_ih", "cell.W_hh"), ("output.W",))
        gn = {k: fro(g) for k, g in grads.items()}
        old = [np.sqrt(sum(fro(self.params[k]) ** 2 for k in ks)) for ks in layers]
        lr = self.dtype.type(lr)
        step_sq = [0.0, 0.0]
        for k, g in grads.items():
            new = self.params[k] - lr * g
            for l, ks in enumerate(layers):
                if k in ks:
                    step_sq[l] += fro(new - self.params[k]) ** 2
            self.params[k][...] = new
        new = [np.sqrt(sum(fro(self.params[k]) ** 2 for k in ks)) for ks in layers]
        return {
            "loss": loss,
            "grad_norms": gn,
            "grad_norm": np.array([np.sqrt(sum(gn[k] ** 2 for k in ks)) for ks in layers]),
            "weight_norm": np.array(new),
            "update_ratio": np.array([np.sqrt(s) / o if o > 0 else np.inf for s, o in zip(step_sq, old)]),
            "grad_norm_total": float(np.sqrt(sum(v ** 2 for v in gn.values()))),
            "time_delta_norm": tdn,
        }
