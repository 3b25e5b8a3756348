"""Plain NumPy reference implementations: the speed baseline and the tests' independent computation.

Everything here is deliberately straightforward NumPy (no Numba, no fusion): one
forward pass that keeps what the backward pass needs, one explicit backward pass,
and the statistics gradtui displays computed from those same arrays.

Conventions shared by both models:

* Weights are stored (fan_in, fan_out), so a layer is ``z = h @ W + b``.
* All arithmetic happens in the model's ``dtype``; statistics are returned as
  1-D float64 arrays and the loss as a Python float.
* ``step`` does one plain SGD update ``p <- p - lr * dL/dp`` on every parameter
  and returns the statistics of the gradient it used (computed before the update,
  except ``weight_norm`` which is measured after it).

The recurrent models live in :mod:`gradtui.engine.reference.numpy_rnn` and are re-exported here.
"""

from __future__ import annotations

import numpy as np

from gradtui.config.schema import ACTIVATIONS
from gradtui.tasks.sequences import adding

from gradtui.engine.reference.numpy_rnn import NumpyRNN, fro as _fro, xavier_uniform

# The same epsilon as the kernels (gradtui.engine.batchnorm_kernel), kept here so this module needs no Numba.
BN_EPS = 1e-5
# phi' below 5% of its maximum counts as saturated: sigmoid' <= 1/4, tanh' <= 1.
SATURATION_THRESHOLD = {"sigmoid": 0.0125, "tanh": 0.05}
# Activations whose derivative can be exactly zero (a "dead" unit is possible).
CAN_DIE = ("relu", "leaky_relu", "prelu")


def activation(name: str, z: np.ndarray, slope=0.01, elu_alpha: float = 1.0):
    """Return (phi(z), phi'(z)) elementwise.

    sigmoid(z) = 1 / (1 + e^-z)          phi' = phi (1 - phi)        (max 1/4)
    tanh(z)                             phi' = 1 - phi^2            (max 1)
    relu(z) = max(z, 0)                 phi' = [z > 0]
    leaky_relu / prelu(z) = z if z > 0 else slope * z,   phi' = 1 or slope
        (``slope`` is a scalar for leaky_relu, a per-unit vector alpha for prelu)
    elu(z) = z if z > 0 else alpha (e^z - 1),            phi' = 1 or alpha e^z
    linear(z) = z                       phi' = 1
    At the kink z = 0 the left derivative is used (relu'(0) = 0).
    """
    if name == "sigmoid":
        a = 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + e^-z), without overflow
        return a, a * (1.0 - a)
    if name == "tanh":
        a = np.tanh(z)
        return a, 1.0 - a * a
    if name == "relu":
        pos = z > 0
        return np.where(pos, z, 0).astype(z.dtype), pos.astype(z.dtype)
    if name in ("leaky_relu", "prelu"):
        pos = z > 0
        slope = np.asarray(slope, dtype=z.dtype)
        return np.where(pos, z, slope * z), np.where(pos, 1, slope).astype(z.dtype)
    if name == "elu":
        pos = z > 0
        e = np.exp(np.minimum(z, 0))  # never overflows
        return np.where(pos, z, elu_alpha * (e - 1)), np.where(pos, 1, elu_alpha * e).astype(z.dtype)
    if name == "linear":
        return z, np.ones_like(z)
    raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS}")


class NumpyMLP:
    """A depth x width MLP with optional batch norm and residual connections.

    Hidden layer l (input h_l, h_0 = x):
        z_l   = h_l W_l + b_l                                  (pre-activation, before BN)
        zbn_l = gamma_l * (z_l - mean_B z_l) / sqrt(var_B z_l + eps) + beta_l   (if batchnorm,
                batch mean and biased batch variance over the batch axis, eps = 1e-5; else z_l)
        a_l   = phi(zbn_l)
        h_l+1 = h_l + a_l if residual and fan_in == fan_out else a_l
    Output: logits = h_L W_out + b_out.
    Loss: classification  L = -(1/B) sum_n log softmax(logits_n)[y_n]   (y integer labels)
          regression      L = (1/(B K)) sum_{n,k} (logits_nk - y_nk)^2     (y float (B, K))

    ``params`` maps "hidden.{i}.W" (fan_in, fan_out), "hidden.{i}.b", "hidden.{i}.gamma",
    "hidden.{i}.beta" (batchnorm), "hidden.{i}.alpha" (prelu, one slope per unit),
    "output.W", "output.b" to arrays; it may be overwritten in place (e.g. with the engine's
    weights) before calling :meth:`step`. Weights start Xavier-uniform, biases and beta at 0,
    gamma at 1, prelu alpha at ``prelu_init``.
    """

    def __init__(self, depth, width, n_in, n_out, activation, batchnorm=False, residual=False,
                 classification=True, dtype=np.float32, seed=0, leaky_slope=0.01, elu_alpha=1.0,
                 prelu_init=0.25):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")
        self.depth, self.width, self.n_in, self.n_out = int(depth), int(width), int(n_in), int(n_out)
        self.activation = activation
        self.batchnorm, self.residual, self.classification = bool(batchnorm), bool(residual), bool(classification)
        self.dtype = np.dtype(dtype)
        self.leaky_slope, self.elu_alpha = float(leaky_slope), float(elu_alpha)
        rng = np.random.default_rng(seed)
        p = {}
        fan_in = self.n_in
        for i in range(self.depth):
            p[f"hidden.{i}.W"] = xavier_uniform(fan_in, self.width, rng, self.dtype)
            p[f"hidden.{i}.b"] = np.zeros(self.width, self.dtype)
            if self.batchnorm:
                p[f"hidden.{i}.gamma"] = np.ones(self.width, self.dtype)
                p[f"hidden.{i}.beta"] = np.zeros(self.width, self.dtype)
            if activation == "prelu":
                p[f"hidden.{i}.alpha"] = np.full(self.width, prelu_init, self.dtype)
            fan_in = self.width
        p["output.W"] = xavier_uniform(fan_in, self.n_out, rng, self.dtype)
        p["output.b"] = np.zeros(self.n_out, self.dtype)
        self.params = p

    # ------------------------------------------------------------------ forward
    def _has_skip(self, i: int) -> bool:
        W = self.params[f"hidden.{i}.W"]
        return self.residual and W.shape[0] == W.shape[1]

    def forward(self, x, z_shift=None, running=None, use_running=False):
        """Return (logits, cache). ``z_shift`` ({layer: array}) is added to z_l; the
        gradient check uses it to probe dL/dz_l (for the output layer, layer = depth).

        ``running`` = (mean, var) arrays (depth, width): batch norm's running statistics.
        With ``use_running`` they normalise (evaluation); otherwise they are updated in
        place from the batch, r <- 0.9 r + 0.1 batch value, with the unbiased batch variance."""
        p, cache = self.params, []
        h = np.asarray(x, self.dtype)
        for i in range(self.depth):
            z = h @ p[f"hidden.{i}.W"]
            z += p[f"hidden.{i}.b"]
            if z_shift is not None and i in z_shift:
                z = z + z_shift[i]
            zhat = inv_std = None
            if self.batchnorm and use_running:
                mean, var = running[0][i], running[1][i]
            elif self.batchnorm:
                mean = z.mean(axis=0, dtype=np.float64)
                var = z.var(axis=0, dtype=np.float64)  # biased (population) batch variance
                if running is not None:
                    n = z.shape[0]
                    unbiased = var * n / (n - 1) if n > 1 else var
                    running[0][i] = 0.9 * running[0][i] + 0.1 * mean
                    running[1][i] = 0.9 * running[1][i] + 0.1 * unbiased
                mean, var = mean.astype(self.dtype), var.astype(self.dtype)
            if self.batchnorm:
                inv_std = 1.0 / np.sqrt(var + self.dtype.type(BN_EPS))
                zhat = (z - mean) * inv_std
                zbn = p[f"hidden.{i}.gamma"] * zhat + p[f"hidden.{i}.beta"]
            else:
                zbn = z
            slope = p[f"hidden.{i}.alpha"] if self.activation == "prelu" else self.leaky_slope
            a, dphi = activation(self.activation, zbn, slope, self.elu_alpha)
            out = h + a if self._has_skip(i) else a
            cache.append(dict(h=h, zhat=zhat, inv_std=inv_std, zbn=zbn, dphi=dphi, out=out))
            h = out
        logits = h @ p["output.W"] + p["output.b"]
        if z_shift is not None and self.depth in z_shift:
            logits = logits + z_shift[self.depth]
        cache.append(dict(h=h, out=logits))
        return logits, cache

    def loss(self, logits, y):
        """Return (L, dL/dlogits) for the batch (see the class docstring for L)."""
        B = logits.shape[0]
        if self.classification:
            y = np.asarray(y).astype(np.int64).reshape(-1)
            shifted = logits - logits.max(axis=1, keepdims=True)
            e = np.exp(shifted)
            s = e.sum(axis=1, keepdims=True)
            logp = shifted - np.log(s)
            loss = -float(np.mean(logp[np.arange(B), y], dtype=np.float64))
            dlogits = e / s  # softmax; dL/dlogits = (softmax - onehot) / B
            dlogits[np.arange(B), y] -= 1
            return loss, dlogits / self.dtype.type(B)
        diff = logits - np.asarray(y, self.dtype).reshape(logits.shape)
        loss = float(np.mean(np.square(diff, dtype=np.float64)))
        return loss, diff * self.dtype.type(2.0 / diff.size)

    # ----------------------------------------------------------------- backward
    def _backward(self, x, y, z_shift=None, running=None):
        """Forward + backward. Returns (loss, grads, deltas, cache); deltas[l] = dL/dz_l.
        ``running``: batch norm's running statistics, updated by the forward pass."""
        p = self.params
        logits, cache = self.forward(x, z_shift, running)
        loss, dz = self.loss(logits, y)
        grads, deltas = {}, [None] * (self.depth + 1)
        deltas[self.depth] = dz
        grads["output.W"] = cache[-1]["h"].T @ dz
        grads["output.b"] = dz.sum(axis=0)
        dh = dz @ p["output.W"].T
        for i in reversed(range(self.depth)):
            c = cache[i]
            dzbn = dh * c["dphi"]  # dL/da * phi'(zbn)
            if self.activation == "prelu":  # d phi / d alpha = min(zbn, 0)
                grads[f"hidden.{i}.alpha"] = (dh * np.minimum(c["zbn"], 0)).sum(axis=0)
            if self.batchnorm:
                zhat = c["zhat"]
                grads[f"hidden.{i}.gamma"] = (dzbn * zhat).sum(axis=0)
                grads[f"hidden.{i}.beta"] = dzbn.sum(axis=0)
                dzhat = dzbn * p[f"hidden.{i}.gamma"]
                # dL/dz = inv_std * (dzhat - mean_B dzhat - zhat * mean_B(dzhat * zhat))
                dz = c["inv_std"] * (dzhat - dzhat.mean(axis=0) - zhat * (dzhat * zhat).mean(axis=0))
            else:
                dz = dzbn
            deltas[i] = dz
            grads[f"hidden.{i}.W"] = c["h"].T @ dz
            grads[f"hidden.{i}.b"] = dz.sum(axis=0)
            dh_in = dz @ p[f"hidden.{i}.W"].T
            if self._has_skip(i):  # the skip path passes dL/dh_out straight through
                dh_in += dh
            dh = dh_in
        return loss, grads, deltas, cache

    def loss_and_grads(self, x, y):
        """Return (L, {name: dL/dparam}) without changing the parameters."""
        loss, grads, _, _ = self._backward(x, y)
        return loss, grads

    def step(self, x, y, lr):
        """One SGD step p <- p - lr dL/dp on every parameter; returns the statistics.

        Per-layer arrays (hidden layers in order, then the output layer):
          grad_norm     ||dL/dW||_F
          delta_norm    ||dL/dz||_F over the batch, z = h W + b before batch norm
                        (the output layer: dL/dlogits)
          weight_norm   ||W||_F after the update
          update_ratio  ||W_new - W_old||_F / ||W_old||_F
          act_mean, act_std   mean and population std over all elements of the layer's
                        output (h after the residual add; logits for the output layer)
          dead_fraction fraction of units with phi'(zbn) == 0 for every example (relu,
                        leaky_relu/prelu with a zero slope; 0 otherwise and for the output)
          saturation    fraction of the B x width elements with phi' < 5% of its maximum
                        (sigmoid' < 0.0125, tanh' < 0.05; 0 otherwise and for the output)
        Scalars: loss (before the update), grad_norm_total = sqrt(sum over all parameter
        gradients of their squared entries).
        """
        loss, grads, deltas, cache = self._backward(x, y)
        L = self.depth + 1
        stats = {k: np.zeros(L) for k in ("grad_norm", "delta_norm", "weight_norm", "update_ratio",
                                          "act_mean", "act_std", "dead_fraction", "saturation")}
        names = [f"hidden.{i}" for i in range(self.depth)] + ["output"]
        for l, name in enumerate(names):
            stats["grad_norm"][l] = _fro(grads[f"{name}.W"])
            stats["delta_norm"][l] = _fro(deltas[l])
            out = cache[l]["out"]
            stats["act_mean"][l] = np.mean(out, dtype=np.float64)
            stats["act_std"][l] = np.std(out, dtype=np.float64)
            if l < self.depth:
                dphi = cache[l]["dphi"]
                if self.activation in CAN_DIE:
                    stats["dead_fraction"][l] = np.mean(np.all(dphi == 0, axis=0))
                if self.activation in SATURATION_THRESHOLD:
                    stats["saturation"][l] = np.mean(dphi < SATURATION_THRESHOLD[self.activation])
        other_sq = sum(_fro(g) ** 2 for k, g in grads.items() if not k.endswith(".W"))
        stats["grad_norm_total"] = float(np.sqrt(np.sum(stats["grad_norm"] ** 2) + other_sq))
        stats["loss"] = loss
        lr = self.dtype.type(lr)
        for key, g in grads.items():
            p = self.params[key]
            if key.endswith(".W"):
                l = names.index(key[:-2])
                old_norm = _fro(p)
                new = p - lr * g
                step_norm = _fro(new - p)
                stats["update_ratio"][l] = step_norm / old_norm if old_norm > 0 else (np.inf if step_norm else 0.0)
                stats["weight_norm"][l] = _fro(new)
                p[...] = new
            else:
                p -= lr * g
        return stats


def spirals(n, classes, noise, rng, dtype=np.float32):
    """``classes`` interleaved 2-D spiral arms, n points in all (arm k gets n//classes, the
    first n % classes arms one more). Point j of arm k, with radius r in [0, 1]:
        theta = 2 pi k / classes + 4 r + noise * N(0, 1),   x = r (sin theta, cos theta)
    Returns (x (n, 2) of ``dtype``, y (n,) int64 arm labels)."""
    counts = [n // classes + (k < n % classes) for k in range(classes)]
    xs, ys = [], []
    for k, m in enumerate(counts):
        r = np.linspace(0.0, 1.0, m)
        theta = 2 * np.pi * k / classes + 4.0 * r + noise * rng.standard_normal(m)
        xs.append(np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1))
        ys.append(np.full(m, k, np.int64))
    return np.concatenate(xs).astype(dtype), np.concatenate(ys)


def adding_batch(batch, T, rng, dtype=np.float32):
    """The adding problem (Hochreiter & Schmidhuber 1997): x (batch, T, 2), y (batch, 1).

    Channel 0 holds values ~ U[0, 1]; channel 1 is 1 at exactly two positions, one drawn
    uniformly from [0, T//2) and one from [T//2, T), else 0. The target is the sum of the
    two marked channel-0 values."""
    x, y = adding(batch, T, rng)  # the engine's own generator: the data is not what is compared
    return x.astype(dtype), y.astype(dtype)


__all__ = ["NumpyMLP", "NumpyRNN", "activation", "adding_batch", "spirals", "xavier_uniform"]
