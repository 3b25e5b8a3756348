"""Finite-difference check of the NumPy reference models (run: python -m benchmarks.check_reference).

In float64, every parameter entry's central difference (L(p + e) - L(p - e)) / 2e is compared
with the analytic gradient, as is every entry of dL/dz (MLP, probed with ``z_shift``) and of
dL/dh_t (RNN, probed with ``h_shift``), whose norms are the reported delta statistics.
Error per tensor = max |numeric - analytic| / max(max |analytic|, max |numeric|); tensors whose
true gradient is zero (the bias before batch norm) are checked in absolute terms instead.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np

from gradtui.engine.reference.numpy_mlp import ACTIVATIONS, NumpyMLP, NumpyRNN, adding_batch
from gradtui.engine.reference.numpy_rnn import fro

EPS = 1e-6
TOL = 1e-6


def fd(f, arr):
    """Central-difference gradient of the scalar f() with respect to arr (perturbed in place)."""
    g = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + EPS
        lp = f()
        arr[idx] = old - EPS
        lm = f()
        arr[idx] = old
        g[idx] = (lp - lm) / (2 * EPS)
    return g


def rel_err(num, ana):
    scale = max(np.abs(ana).max(), np.abs(num).max())
    err = np.abs(num - ana).max()
    return err / scale if scale > 1e-7 else err  # absolute when the gradient is ~0


def check_mlp(worst):
    rng = np.random.default_rng(1)
    B, n_in, width, n_out = 6, 4, 4, 3
    for act, bn, res, cls in itertools.product(ACTIVATIONS, (False, True), (False, True), (True, False)):
        net = NumpyMLP(3, width, n_in, n_out, act, batchnorm=bn, residual=res, classification=cls,
                       dtype=np.float64, seed=2, leaky_slope=0.1, elu_alpha=1.3)
        for k, v in net.params.items():  # move away from the symmetric initial values
            v += 0.3 * rng.standard_normal(v.shape)
        x = rng.standard_normal((B, n_in))
        y = rng.integers(0, n_out, B) if cls else rng.standard_normal((B, n_out))
        loss, grads, deltas, _ = net._backward(x, y)
        f = lambda: net.loss(net.forward(x)[0], y)[0]  # noqa: E731
        for k, p in net.params.items():
            kind = k.split(".")[-1] if k.startswith("hidden") else "output." + k.split(".")[-1]
            e = rel_err(fd(f, p), grads[k])
            worst[(f"mlp {act}", kind)] = max(worst.get((f"mlp {act}", kind), 0), e)
        for l in range(net.depth + 1):
            shift = {l: np.zeros_like(deltas[l])}
            g = lambda: net.loss(net.forward(x, shift)[0], y)[0]  # noqa: E731
            e = rel_err(fd(g, shift[l]), deltas[l])
            worst[(f"mlp {act}", "dL/dz")] = max(worst.get((f"mlp {act}", "dL/dz"), 0), e)
        # step(): statistics agree with the gradients it applied and the parameters it left.
        before = {k: v.copy() for k, v in net.params.items()}
        s = net.step(x, y, 0.05)
        assert abs(s["loss"] - loss) < 1e-12
        names = [f"hidden.{i}" for i in range(net.depth)] + ["output"]
        for l, nm in enumerate(names):
            W0, W1 = before[f"{nm}.W"], net.params[f"{nm}.W"]
            assert np.allclose(W1, W0 - 0.05 * grads[f"{nm}.W"], rtol=1e-12, atol=1e-15)
            assert np.isclose(s["weight_norm"][l], np.linalg.norm(W1))
            assert np.isclose(s["update_ratio"][l], np.linalg.norm(W1 - W0) / np.linalg.norm(W0))
            assert np.isclose(s["grad_norm"][l], np.linalg.norm(grads[f"{nm}.W"]))
            assert np.isclose(s["delta_norm"][l], np.linalg.norm(deltas[l]))
        total = np.sqrt(sum(np.sum(g ** 2) for g in grads.values()))
        assert np.isclose(s["grad_norm_total"], total)


def check_mlp_stats():
    """dead_fraction, saturation and activation moments on hand-made cases."""
    net = NumpyMLP(2, 3, 2, 2, "relu", dtype=np.float64)
    net.params["hidden.0.b"][:] = [-100.0, 0.0, 0.0]  # unit 0 of layer 0 is dead for any small x
    x = np.random.default_rng(0).uniform(-1, 1, (8, 2))
    s = net.step(x, np.zeros(8, int), 0.0)
    assert np.isclose(s["dead_fraction"][0], 1 / 3) and s["dead_fraction"][-1] == 0
    assert s["saturation"].max() == 0
    logits, cache = net.forward(x)
    assert np.isclose(s["act_mean"][-1], logits.mean()) and np.isclose(s["act_std"][-1], logits.std())
    assert np.isclose(s["act_mean"][1], cache[1]["out"].mean())
    net = NumpyMLP(1, 2, 1, 1, "tanh", dtype=np.float64)
    net.params["hidden.0.W"][:] = [[1.0, 1.0]]
    net.params["hidden.0.b"][:] = [0.0, 3.0]  # tanh'(3) = 0.0099 < 0.05, tanh'(0..0.1) ~ 1
    s = net.step(np.array([[0.0], [0.1]]), np.array([0, 0]), 0.0)
    assert np.isclose(s["saturation"][0], 0.5), s["saturation"]
    net = NumpyMLP(1, 2, 1, 1, "sigmoid", dtype=np.float64)
    net.params["hidden.0.W"][:] = [[1.0, 1.0]]
    net.params["hidden.0.b"][:] = [0.0, 5.0]  # sigmoid'(5) = 0.0066 < 0.0125
    s = net.step(np.array([[0.0], [0.1]]), np.array([0, 0]), 0.0)
    assert np.isclose(s["saturation"][0], 0.5), s["saturation"]


def check_rnn(worst):
    rng = np.random.default_rng(3)
    B, T, H = 3, 7, 4
    for kind in ("rnn", "lstm", "gru"):
        net = NumpyRNN(kind, H, 2, 1, T, dtype=np.float64, seed=4)
        for v in net.params.values():
            v += 0.3 * rng.standard_normal(v.shape)
        x, y = adding_batch(B, T, rng, np.float64)
        loss, grads, tdn, _ = net._backward(x, y)
        f = lambda: float(np.mean((net.forward(x)[0] - y) ** 2))  # noqa: E731
        for k, p in net.params.items():
            worst[(f"rnn {kind}", k)] = rel_err(fd(f, p), grads[k])
        e_h = 0.0
        for t in range(T):
            shift = {t: np.zeros((B, H))}
            g = lambda: float(np.mean((net.forward(x, shift)[0] - y) ** 2))  # noqa: E731
            num = fd(g, shift[t])
            e_h = max(e_h, abs(np.linalg.norm(num) - tdn[t]) / max(tdn[t], 1e-300))
        worst[(f"rnn {kind}", "||dL/dh_t||")] = e_h
        before = {k: v.copy() for k, v in net.params.items()}
        s = net.step(x, y, 0.1)
        for k in grads:
            assert np.allclose(net.params[k], before[k] - 0.1 * grads[k], rtol=1e-12, atol=1e-15)
        assert np.isclose(s["grad_norm_total"], np.sqrt(sum(np.sum(g ** 2) for g in grads.values())))
        assert np.isclose(s["weight_norm"][1], np.linalg.norm(net.params["output.W"]))
        assert np.isclose(s["grad_norm"][0], np.hypot(fro(grads["cell.W_ih"]), fro(grads["cell.W_hh"])))


def check_float32():
    """float32 models stay float32 and agree with float64 ones on the same weights."""
    rng = np.random.default_rng(5)
    for act in ACTIVATIONS:
        n32 = NumpyMLP(4, 8, 2, 3, act, batchnorm=True, residual=True, seed=1)
        n64 = NumpyMLP(4, 8, 2, 3, act, batchnorm=True, residual=True, dtype=np.float64, seed=1)
        x = rng.standard_normal((16, 2))
        y = rng.integers(0, 3, 16)
        l32, g32 = n32.loss_and_grads(x, y)
        l64, g64 = n64.loss_and_grads(x, y)
        assert all(g.dtype == np.float32 for g in g32.values())
        assert abs(l32 - l64) < 1e-5 * max(1, abs(l64))
        n32.step(x, y, 0.1)
        assert all(p.dtype == np.float32 for p in n32.params.values())
    for kind in ("rnn", "lstm", "gru"):
        r = NumpyRNN(kind, 8, 2, 1, 10)
        x, y = adding_batch(4, 10, rng)
        r.step(x, y, 0.1)
        assert all(p.dtype == np.float32 for p in r.params.values())


def main() -> int:
    worst: dict = {}
    check_mlp(worst)
    check_mlp_stats()
    check_rnn(worst)
    check_float32()
    width = max(len(f"{a}  {b}") for a, b in worst)
    for (a, b), e in sorted(worst.items()):
        print(f"{a + '  ' + b:<{width}}  {e:.2e}{'' if e <= TOL else '  FAIL'}")
    bad = [k for k, e in worst.items() if e > TOL]
    print(f"max relative error {max(worst.values()):.2e}; {'FAILED ' + str(bad) if bad else 'all <= 1e-6'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
