"""The vanilla RNN's products in vector registers (gradtui.engine.cell_vector): each intrinsic
against NumPy in float64, and the float32 RNN step that uses them against the float64 step
(which does not), including the float32 sums of squares' float64 fallback and NaN."""

import numpy as np
import pytest
from numba import njit

import gradtui
from conftest import recurrent_step
from gradtui.engine.cell_vector import VECTOR_UNITS, cell_backward, cell_forward, grad_accumulate, vector_path

f32 = np.float32


@njit(cache=True)  # kept with the kernels in their cache: compiled once, not at every run
def _forward(rows, n, init, ld_init, x, k_in, w_ih, h, k_h, w_hh, out_h, out_d, tanh_on, limit, sums, alive):
    cell_forward(rows, n, init, 0, ld_init, x, 0, k_in, w_ih, h, 0, k_h, w_hh, out_h, 0, out_d, 0, tanh_on, limit,
                 sums, alive)


@njit(cache=True)  # kept with the kernels in their cache: compiled once, not at every run
def _backward(rows, n, k, a, w, keep, dh, d, db, sums):
    cell_backward(rows, n, k, a, 0, w, keep, dh, 0, d, 0, db, sums)


@njit(cache=True)  # kept with the kernels in their cache: compiled once, not at every run
def _accumulate(m, n, k, a, b, c):
    grad_accumulate(m, n, k, a, 0, b, 0, c)


@njit(cache=True)  # kept with the kernels in their cache: compiled once, not at every run
def _vector_path(a):
    return vector_path(a)


def test_vector_path_is_float32_with_whole_vectors_up_to_64():
    """On processors with AVX2 (VECTOR_UNITS); tests/test_vector_targets.py runs the rest."""
    assert _vector_path(np.zeros((3, 64), f32)) == VECTOR_UNITS
    assert _vector_path(np.zeros((3, 16), f32)) == VECTOR_UNITS
    assert not _vector_path(np.zeros((3, 64)))  # float64: the exact path
    assert not _vector_path(np.zeros((3, 24), f32)) and not _vector_path(np.zeros((3, 128), f32))


@pytest.mark.parametrize("n", [16, 48, 64])
@pytest.mark.parametrize("rows", [13, 32])
@pytest.mark.parametrize("wide", [False, True])
def test_cell_forward_matches_numpy(n, rows, wide):
    """a = init + x W_ih + h W_hh; tanh, phi' = 1 - h^2 and the statistics, or a as is."""
    rng = np.random.default_rng(n + rows)
    k_in = 0 if wide else 2
    init = rng.normal(0, 1, (rows, n) if wide else n).astype(f32)  # X W_ih + b row by row, or the bias
    x, w_ih = rng.normal(0, 1, (rows, k_in)).astype(f32), rng.normal(0, 1, (k_in, n)).astype(f32)
    h, w_hh = rng.uniform(-1, 1, (rows, n)).astype(f32), rng.normal(0, 3 / np.sqrt(n), (n, n)).astype(f32)
    a = init.astype(np.float64) + x.astype(np.float64) @ w_ih + h.astype(np.float64) @ w_hh
    out_h, out_d = np.zeros((rows, n), f32), np.zeros((rows, n), f32)
    _forward(rows, n, init, n if wide else 0, x, k_in, w_ih, h, n, w_hh, out_h, out_d, False, 0.05, np.zeros(3),
             np.zeros(n, np.uint8))
    np.testing.assert_allclose(out_h, a, rtol=1e-5, atol=1e-5)
    sums, alive = np.full(3, np.nan), np.zeros(n, np.uint8)
    alive[0] = 1  # or-ed into, never cleared
    a[1:, 1] = 40.0  # unit 1 saturates to phi' = 0 on every row but the first
    a[:, 2] = 40.0  # unit 2 on every row: dead
    h_pre = (a - init - x.astype(np.float64) @ w_ih).astype(f32)  # h W_hh that gives those a with W_hh = I
    _forward(rows, n, init, n if wide else 0, x, k_in, w_ih, h_pre, n, np.eye(n, dtype=f32), out_h, out_d, True,
             0.05, sums, alive)
    expected = np.tanh(a)
    np.testing.assert_allclose(out_h, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out_d, 1 - out_h.astype(np.float64) ** 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sums[:2], [out_h.sum(dtype=np.float64), np.sum(out_h.astype(np.float64) ** 2)],
                               rtol=1e-5)
    assert sums[2] == np.sum(out_d < f32(0.05))
    np.testing.assert_array_equal(alive, (out_d != 0).any(axis=0) | (np.arange(n) == 0))
    assert alive[2] == 0 and alive[1] == 1


@pytest.mark.parametrize("n", [32, 64])
@pytest.mark.parametrize("product", [False, True])
@pytest.mark.parametrize("keep", [False, True])
def test_cell_backward_matches_numpy(n, product, keep):
    """dh = [keep] dh + A W (A with n columns, k = n, or none), da = dh * phi' written over
    phi', db += sum of da, both squared norms."""
    rows, k = 13, (n if product else 0)
    rng = np.random.default_rng(n + k)
    a, w = rng.normal(0, 1, (rows, n)).astype(f32), rng.normal(0, 1, (n, n)).astype(f32)
    dh, d = rng.normal(0, 1, (rows, n)).astype(f32), rng.uniform(0, 1, (rows, n)).astype(f32)
    db, sums = np.ones(n, f32), np.zeros(2)
    expected_dh = (dh.astype(np.float64) if keep else 0.0) + (a.astype(np.float64) @ w if product else 0.0)
    expected_da = expected_dh * d
    _backward(rows, n, k, a, w, keep, dh, d, db, sums)
    np.testing.assert_allclose(dh, expected_dh, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d, expected_da, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(db, 1 + expected_da.sum(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sums, [np.sum(expected_dh ** 2), np.sum(expected_da ** 2)], rtol=1e-5)


@pytest.mark.parametrize("m", [2, 13, 64])
@pytest.mark.parametrize("n", [16, 64])
def test_grad_accumulate_adds_a_transposed_product(m, n):
    rng = np.random.default_rng(m + n)
    k = 97
    a, b = rng.normal(0, 1, (k, m)).astype(f32), rng.normal(0, 1, (k, n)).astype(f32)
    c = rng.normal(0, 1, (m, n)).astype(f32)
    expected = c.astype(np.float64) + a.astype(np.float64).T @ b
    _accumulate(m, n, k, a, b, c)
    np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-4)


def _experiment(dtype, width, activation, depth, **extra):
    return gradtui.Experiment(gradtui.load_config("vanishing-sigmoid").with_overrides({
        "model.kind": "rnn", "model.depth": depth, "model.width": width, "model.activation": activation,
        "model.init": "xavier", "data.task": "adding", "data.seq_len": 20, "data.samples": 128,
        "train.batch_size": 13, "train.dtype": dtype, **extra}))


def _both(width, activation, depth, scale=None, **extra):
    """One step in float32 (the vector path) and float64 from the same weights and batch."""
    e32 = _experiment("float32", width, activation, depth, **extra)
    e64 = _experiment("float64", width, activation, depth, **extra)
    if scale:
        for name, factor in scale.items():
            e64.layout.view(e64.theta, name)[:] *= factor
    x, y = e64.batch()
    return recurrent_step(e32, e64.theta.astype(f32), x, y), recurrent_step(e64, e64.theta, x, y)


@pytest.mark.parametrize("width, activation, depth", [(64, "tanh", 1), (32, "tanh", 2), (16, "relu", 2)])
def test_float32_vector_step_matches_float64(width, activation, depth):
    """Loss, every gradient and every statistic (the time profile included) of the float32
    step, which runs on the vector path, against the float64 step, which does not."""
    assert _vector_path(np.zeros((1, width), f32))
    (l32, g32, s32), (l64, g64, s64) = _both(width, activation, depth, **{"model.init_gain": 8.0})
    np.testing.assert_allclose(l32, l64, rtol=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=0, atol=2e-5 * np.abs(g64).max())
    for name in s64:
        np.testing.assert_allclose(s32[name], s64[name], rtol=2e-4, atol=1e-6, err_msg=name)
    assert s64["saturation"][:depth].max() > 0 or activation == "relu"  # the count is exercised


@pytest.mark.parametrize("scale", [{"output.W": 1e14}, {"rnn.0.W_ih": 1e-12, "rnn.0.b": 0.0}])
def test_vector_step_norms_and_statistics_hold_exploding_and_vanishing_values(scale):
    """dL/dh near 1e20 (squares overflow float32) and states near 1e-13 (squares underflow):
    the norms and act_std come out as in float64, through the float64 fallback."""
    (_, _, s32), (_, _, s64) = _both(64, "tanh", 1, scale)
    for name in ("delta_norm", "time_delta_norm", "act_std", "act_mean"):
        assert np.isfinite(s32[name]).all(), name
        np.testing.assert_allclose(s32[name], s64[name], rtol=1e-4, atol=0, err_msg=name)
    assert s64["act_std"][0] < 1e-9 or s64["time_delta_norm"].max() > 1e19  # the range the test is about


def test_a_nan_input_reaches_the_loss_through_the_tanh():
    """The tanh's clamps pass NaN on (a clamp that turned NaN into +-1 would hide a broken step)."""
    exp = _experiment("float32", 64, "tanh", 1)
    x, y = exp.batch()
    x = x.copy()
    x[3, 5, 0] = np.nan
    loss, grad, stats = recurrent_step(exp, exp.theta, x, y)
    assert np.isnan(loss) and np.isnan(stats["act_mean"][0])
