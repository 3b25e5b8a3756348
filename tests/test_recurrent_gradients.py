"""Finite-difference checks (float64) of every gradient the recurrent engine computes,
of the per-timestep profile dL/dh_t, and a cross-check against the plain NumPy reference."""

import itertools

import numpy as np
import pytest

import gradtui
from gradtui.engine.reference.numpy_rnn import NumpyRNN
from tests.gradcheck import numeric_gradient, relative_error, stencil_derivative

KINDS = ("rnn", "lstm", "gru")
TASKS = ("adding", "copy", "sine")


def small_experiment(kind, task="adding", depth=1, activation="tanh", **extra):
    overrides = {
        "model.kind": kind, "model.depth": depth, "model.width": 5, "model.activation": activation,
        "model.init": "xavier", "model.init_gain": 1.5, "model.bias_std": 0.3, "model.recurrent_gain": 1.2,
        "data.task": task, "data.seq_len": 6, "data.samples": 64, "train.dtype": "float64", "train.batch_size": 4,
        **extra,
    }
    cfg = gradtui.load_config("vanishing-sigmoid").with_overrides(overrides)
    return gradtui.Experiment(cfg)


CASES = [(k, "adding", d, "tanh") for k in KINDS for d in (1, 2)]
CASES += [(k, t, 2, "tanh") for k in KINDS for t in ("copy", "sine")]
CASES += [("rnn", "adding", 2, a) for a in ("relu", "sigmoid")]


@pytest.mark.parametrize("kind,task,depth,activation", CASES)
def test_every_parameter_matches_finite_differences(kind, task, depth, activation):
    exp = small_experiment(kind, task, depth, activation)
    x, y = exp.batch()
    names = set()
    for name in exp.params():
        analytic, numeric = numeric_gradient(exp, x, y, name, max_entries=20)
        err = relative_error(analytic, numeric)
        assert err <= 1e-6, f"{name}: relative error {err:.2e}"
        names.add(name.split(".", 2)[-1] if name.startswith("rnn") else name)
    expected = {"W_ih", "W_hh", "b", "output.W", "output.b"} | ({"b_hn"} if kind == "gru" else set())
    assert names == expected


def _total_dh(exp, x, y):
    """dL/dh_t of the top layer by finite differences on an additive shift of h_t, (T, B, H)."""
    T, B, H = exp.network.seq_len, x.shape[0], exp.network.width
    grad = np.zeros_like(exp.theta)
    numeric = np.zeros((T, B, H))
    for t, i, j in itertools.product(range(T), range(B), range(H)):
        def loss(v):
            shift = np.zeros((T, B, H))
            shift[t, i, j] = v
            return exp.network.loss_and_grad(exp.theta, grad, x, y, False, None, h_shift=shift)
        numeric[t, i, j] = stencil_derivative(loss, 0.0)
    return numeric


@pytest.mark.parametrize("kind,task,depth", [(k, "adding", 2) for k in KINDS] + [("lstm", "sine", 1), ("gru", "copy", 1)])
def test_time_delta_norm_matches_finite_differences_on_h_t(kind, task, depth):
    exp = small_experiment(kind, task, depth)
    x, y = exp.batch()
    stats = {k: np.zeros(depth + 1) for k in ("act_mean", "act_std", "dead_fraction", "saturation", "delta_norm")}
    stats.update(exp.network.extra_stats())
    exp.network.loss_and_grad(exp.theta, np.zeros_like(exp.theta), x, y, True, stats)
    numeric = np.sqrt(np.sum(_total_dh(exp, x, y) ** 2, axis=(1, 2)))
    profile = stats["time_delta_norm"]
    assert profile.shape == (exp.network.seq_len,)
    assert relative_error(profile, numeric) <= 1e-6, (profile, numeric)
    if task == "adding":  # the loss reads only h_T, and the gradient reaches every earlier step
        assert np.all(profile > 0)


@pytest.mark.parametrize("kind", KINDS)
def test_matches_the_numpy_reference(kind):
    """One layer, adding loss: gradients and the time profile equal the independent NumPy BPTT."""
    exp = small_experiment(kind, "adding", 1)
    ref = NumpyRNN(kind, 5, 2, 1, 6, dtype=np.float64)
    for name, value in exp.params().items():
        ref.params[name.replace("rnn.0", "cell")] = value.copy()
    x, y = exp.batch()
    loss, grads, profile, _ = ref._backward(x, y)
    stats = {k: np.zeros(2) for k in ("act_mean", "act_std", "dead_fraction", "saturation", "delta_norm")}
    stats.update(exp.network.extra_stats())
    grad = np.zeros_like(exp.theta)
    ours = exp.network.loss_and_grad(exp.theta, grad, x, y, True, stats)
    assert ours == pytest.approx(loss, rel=1e-12)
    for name, g in exp.layout.to_dict(grad).items():
        np.testing.assert_allclose(g, grads[name.replace("rnn.0", "cell")], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(stats["time_delta_norm"], profile, rtol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_statistics_are_sensible(kind):
    exp = small_experiment(kind, "adding", 2)
    rec = exp.step()
    assert exp.layer_names == ["rnn.0", "rnn.1", "output"]
    for name in ("act_mean", "act_std", "dead_fraction", "saturation", "delta_norm", "grad_norm"):
        values = getattr(rec, name)
        assert values.shape == (3,) and np.all(np.isfinite(values)), name
    assert np.all((rec.dead_fraction >= 0) & (rec.dead_fraction <= 1))
    assert np.all((rec.saturation >= 0) & (rec.saturation <= 1))
    assert np.all(rec.delta_norm > 0) and np.all(rec.grad_norm > 0)
    assert rec.time_delta_norm.shape == (6,)
    if kind == "lstm":
        assert rec.forget_gate_mean.shape == (2,)
        assert np.all((rec.forget_gate_mean > 0.5) & (rec.forget_gate_mean < 1.0))  # forget bias 1
    else:
        assert rec.forget_gate_mean is None


def test_dead_relu_units_are_counted():
    exp = small_experiment("rnn", "adding", 1, "relu")
    b = exp.params()["rnn.0.b"]
    b[:2] = -100.0  # two units never fire
    exp.set_params({"rnn.0.b": b})
    rec = exp.step()
    assert rec.dead_fraction[0] == pytest.approx(2 / 5)


def test_float32_matches_float64():
    e64 = small_experiment("lstm", "adding", 2)
    e32 = small_experiment("lstm", "adding", 2, **{"train.dtype": "float32"})
    e32.set_params(e64.params())
    x, y = e64.batch()
    l64, g64 = e64.gradients(x, y)
    l32, g32 = e32.gradients(x, y)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for name in g64:
        np.testing.assert_allclose(g32[name], g64[name], rtol=1e-3, atol=1e-5)
