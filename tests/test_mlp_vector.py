"""The MLP's fused hidden layers (gradtui.engine.mlp_vector, gradtui.engine.mlp_fused): each
intrinsic against NumPy in float64, and the fused float32 step against the step it replaces
(mlp_kernel.mlp_step) and against float64, including the float64 fallback of sums of squares
that leave float32's safe range, and NaN."""

import numpy as np
import pytest

import gradtui
from gradtui.engine import mlp_kernel as K
from gradtui.engine.jit import kernel
from gradtui.engine.mlp_fused import WeightStep, fused_applies, fused_mlp_step
from gradtui.engine.mlp_vector import layer_backward, layer_forward, weight_gradient

f32 = np.float32
LIMIT = 0.05


@kernel
def _forward(x, theta, w_off, b_off, out, sigmoid, shift, sums, alive):
    layer_forward(x.shape[0], out.shape[1], x.shape[1], x, 0, theta, w_off, theta, b_off, out, 0, sigmoid, shift,
                  f32(LIMIT), sums, alive)


@kernel
def _backward(a, w, h, sigmoid, dz, db, sums):
    layer_backward(a.shape[0], w.shape[1], a.shape[1], a, 0, w, h, 0, sigmoid, dz, 0, db, 0, sums)


@kernel
def _weight(a, b, grad, theta, out, update, lr, decay, sums):
    weight_gradient(a.shape[1], b.shape[1], a.shape[0], a, 0, b, 0, grad, 3, theta, out, 3, update, lr, decay, sums)


def _phi(h, sigmoid):
    h = h.astype(np.float64)
    return h * (1 - h) if sigmoid else 1 - h * h


@pytest.mark.parametrize("n", [16, 48, 64])
@pytest.mark.parametrize("rows, k", [(13, 2), (64, 64)])
@pytest.mark.parametrize("sigmoid", [False, True])
def test_layer_forward_matches_numpy(n, rows, k, sigmoid):
    """h = phi(x W + b) with the shifted sums, the saturated count and the units alive."""
    rng = np.random.default_rng(n + rows)
    x = rng.normal(0, 1, (rows, k)).astype(f32)
    w, b = rng.normal(0, 2 / np.sqrt(k), (k, n)).astype(f32), rng.normal(0, 1, n).astype(f32)
    b[3] = 60.0  # unit 3 saturates to phi' = 0 on every row: dead
    theta = np.concatenate([np.zeros(5, f32), w.ravel(), b])
    out, sums, alive = np.zeros((rows, n), f32), np.full(3, np.nan), np.zeros(n, np.uint8)
    alive[3] = 1  # or-ed into, never cleared
    _forward(x, theta, 5, 5 + k * n, out, sigmoid, f32(0.3), sums, alive)
    z = x.astype(np.float64) @ w + b
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-z)) if sigmoid else np.tanh(z), rtol=1e-5, atol=1e-6)
    h = out.astype(np.float64)
    np.testing.assert_allclose(sums[:2], [np.sum(h - 0.3), np.sum((h - 0.3) ** 2)], rtol=1e-5)
    d = out * (1 - out) if sigmoid else 1 - out * out
    assert sums[2] == np.sum(d < f32(LIMIT)) > 0
    np.testing.assert_array_equal(alive, (d != 0).any(axis=0) | (np.arange(n) == 3))
    _forward(x, theta, 5, 5 + k * n, out, sigmoid, f32(0.3), sums, alive := np.zeros(n, np.uint8))
    assert alive[3] == 0 and alive.sum() == n - 1


@pytest.mark.parametrize("n, k", [(16, 2), (48, 48), (64, 64)])
@pytest.mark.parametrize("sigmoid", [False, True])
def test_layer_backward_matches_numpy(n, k, sigmoid):
    """dz = (A W) * phi'(h), db its column sums (overwritten), ||dz||^2."""
    rows = 13
    rng = np.random.default_rng(n + k)
    a, w = rng.normal(0, 1, (rows, k)).astype(f32), rng.normal(0, 1, (k, n)).astype(f32)
    h = rng.uniform(0.01, 0.99, (rows, n)).astype(f32)
    dz, db, sums = np.zeros((rows, n), f32), np.full(n, 7.0, f32), np.zeros(1)
    _backward(a, w, h, sigmoid, dz, db, sums)
    expected = (a.astype(np.float64) @ w) * _phi(h, sigmoid)
    np.testing.assert_allclose(dz, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(db, expected.sum(axis=0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(sums[0], np.sum(expected ** 2), rtol=1e-5)


@pytest.mark.parametrize("m, n", [(2, 64), (13, 16), (64, 64)])
@pytest.mark.parametrize("update, decay", [(False, 0.0), (True, 0.0), (True, 0.01)])
def test_weight_gradient_and_its_sgd_update(m, n, update, decay):
    """G = A^T B and ||G||^2; with ``update``, W' = W - lr (G + decay W) with the sums of W^2,
    W'^2 and the step's square; without it, the output buffer is left alone."""
    rng = np.random.default_rng(m + n)
    k, lr = 64, 0.1
    a, b = rng.normal(0, 1, (k, m)).astype(f32), rng.normal(0, 1, (k, n)).astype(f32)
    theta = rng.normal(0, 1, 3 + m * n).astype(f32)
    grad, out, sums = np.zeros_like(theta), np.full_like(theta, 5.0), np.zeros(4)
    _weight(a, b, grad, theta, out, update, lr, decay, sums)
    g = a.astype(np.float64).T @ b
    np.testing.assert_allclose(grad[3:].reshape(m, n), g, rtol=1e-5, atol=1e-4)
    assert np.sum(np.abs(grad[:3])) == 0  # nothing before the offset
    np.testing.assert_allclose(sums[0], np.sum(g ** 2), rtol=1e-5)
    if not update:
        assert np.all(out == 5.0)
        return
    w = theta[3:].reshape(m, n).astype(np.float64)
    step = -lr * (g + decay * w)
    np.testing.assert_allclose(out[3:].reshape(m, n), w + step, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sums[1:], [np.sum(w ** 2), np.sum((w + step) ** 2), np.sum(step ** 2)], rtol=1e-5)


def _net(dtype, activation="tanh", width=64, depth=3, **extra):
    cfg = gradtui.load_config("vanishing-sigmoid").with_overrides({
        "model.depth": depth, "model.width": width, "model.activation": activation, "model.init": "xavier",
        "train.batch_size": 24, "data.samples": 256, "train.dtype": dtype, **extra})
    return gradtui.Experiment(cfg)


def _stats(depth):
    return {k: np.zeros(depth + 1) for k in ("act_mean", "act_std", "dead_fraction", "saturation", "delta_norm")}


def _run(step, exp, theta, x, y):
    """Loss, gradient and statistics of one forward and backward pass by ``step``."""
    net = exp.network
    x = np.ascontiguousarray(x, dtype=theta.dtype)
    y_class, y_value = net._targets(y)
    grad, stats = np.zeros_like(theta), _stats(net.depth)
    layers = net.table.shape[0]
    sums_only = WeightStep(False, 0.0, 0.0, theta, np.zeros((layers, 6)), np.arange(layers))
    args = (theta, grad, net.table, x, y_class, y_value, net._workspace(x.shape[0]), net.settings,
            net.running_mean, net.running_var, True, K.MLPStats(True, *stats.values()))
    loss = step(*args, sums_only) if step is fused_mlp_step else step(*args)
    return loss, grad, stats


def test_the_fused_path_applies_to_float32_tanh_and_sigmoid_of_whole_vector_widths_only():
    def applies(exp):
        net = exp.network
        return fused_applies(net.settings, net.table, net._workspace(8))

    assert applies(_net("float32")) and applies(_net("float32", "sigmoid", 16))
    assert not applies(_net("float64")) and not applies(_net("float32", width=24))
    assert not applies(_net("float32", "relu")) and not applies(_net("float32", width=128))
    assert not applies(_net("float32", **{"model.batchnorm": True}))
    assert not applies(_net("float32", **{"model.residual": True}))


@pytest.mark.parametrize("activation, width", [("tanh", 64), ("sigmoid", 32)])
def test_fused_step_equals_the_step_it_replaces(activation, width):
    """Loss, every gradient and every statistic of the fused float32 step against
    mlp_kernel.mlp_step in float32 (to float32 rounding) and in float64."""
    exp = _net("float32", activation, width)
    x, y = exp.batch()
    theta = exp.theta.astype(f32)
    fused, plain = _run(fused_mlp_step, exp, theta, x, y), _run(K.mlp_step, exp, theta, x, y)
    exact = _run(K.mlp_step, _net("float64", activation, width), theta.astype(np.float64), x, y)
    for other, rtol in ((plain, 1e-5), (exact, 1e-4)):
        np.testing.assert_allclose(fused[0], other[0], rtol=rtol)
        np.testing.assert_allclose(fused[1], other[1], rtol=0, atol=rtol * np.abs(other[1]).max())
        for name, value in other[2].items():
            np.testing.assert_allclose(fused[2][name], value, rtol=rtol * 10, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("scale", [{"output.W": 1e20}, {"hidden.0.W": 1e-14, "hidden.0.b": 0.0}])
def test_fused_sums_hold_exploding_and_vanishing_values(scale):
    """||dL/dz|| near 1e20 (squares overflow float32) and activations near 1e-14 (squares
    underflow): norms and statistics as in float64, through the float64 fallback."""
    e32, e64 = _net("float32"), _net("float64")
    for name, factor in scale.items():
        e64.layout.view(e64.theta, name)[:] *= factor
    x, y = e64.batch()
    (_, g32, s32), (_, g64, s64) = _run(fused_mlp_step, e32, e64.theta.astype(f32), x, y), \
        _run(K.mlp_step, e64, e64.theta, x, y)
    np.testing.assert_allclose(g32, g64, rtol=0, atol=1e-4 * np.abs(g64).max())
    for name in ("delta_norm", "act_std", "act_mean"):
        assert np.isfinite(s32[name]).all(), name
        np.testing.assert_allclose(s32[name], s64[name], rtol=1e-4, atol=0, err_msg=name)
    assert s64["act_std"][0] < 1e-12 or s64["delta_norm"].max() > 1e19  # the range the test is about


def test_a_nan_input_reaches_the_statistics_and_the_loss():
    exp = _net("float32")
    x, y = exp.batch()
    x = x.copy()
    x[3, 1] = np.nan
    loss, _, stats = _run(fused_mlp_step, exp, exp.theta, x, y)
    assert np.isnan(loss) and np.isnan(stats["act_mean"][0]) and np.isnan(stats["delta_norm"][0])
