"""The LSTM's per-step products in vector registers (gradtui.engine.lstm_vector): each intrinsic
against NumPy in float64, and the float32 LSTM step that uses them against the float64 step
(which does not), at widths 16, 32 and 64, at exploding and vanishing scales, and with NaN."""

import numpy as np
import pytest
from numba import njit

import gradtui
from conftest import recurrent_step
from gradtui.engine.lstm_vector import lstm_cell_backward, lstm_cell_forward
from gradtui.engine.rnn_kernel import SIG_SAT, TANH_SAT

f32 = np.float32


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


@njit
def _forward(rows, H, init, ld_init, x, k_in, w_ih, hs, k_h, w_hh, ga, c, sums, alive):
    n = rows * H
    lstm_cell_forward(rows, H, init, 0, ld_init, x, 0, k_in, w_ih, hs, 0, k_h, w_hh, n, ga, 0, c, 0, n, sums, alive)


@njit
def _backward(rows, H, k, a, w, keep, dh, ga, c, dc, db, sums):
    lstm_cell_backward(rows, H, k, a, 0, w, keep, dh, 0, ga, rows * 4 * H, c, rows * H, 0, dc, db, sums)


@pytest.mark.parametrize("H", [16, 32, 64])
@pytest.mark.parametrize("rows", [7, 32])
@pytest.mark.parametrize("wide", [False, True])
def test_lstm_cell_forward_matches_numpy(H, rows, wide):
    """Gates, c_t, h_t and the statistics of one step against float64 NumPy."""
    rng = np.random.default_rng(H + rows)
    G, k_in = 4 * H, (0 if wide else 2)
    init = rng.normal(0, 1, (rows, G) if wide else G).astype(f32)
    x, w_ih = rng.normal(0, 1, (rows, k_in)).astype(f32), rng.normal(0, 1, (k_in, G)).astype(f32)
    w_hh = rng.normal(0, 4 / np.sqrt(H), (H, G)).astype(f32)
    hs = np.zeros((2, rows, H), f32)
    hs[0] = rng.uniform(-1, 1, (rows, H))
    c = np.zeros((2, rows, H), f32)
    c[0] = rng.normal(0, 2, (rows, H))
    ga, sums, alive = np.zeros((rows, G), f32), np.full(4, np.nan), np.zeros(H, np.uint8)
    alive[0] = 1  # or-ed into, never cleared
    w_ih[:, [1, H + 1, 2 * H + 1, 3 * H + 1]] = 0.0
    w_hh[:, [1, H + 1, 2 * H + 1, 3 * H + 1]] = 0.0
    if wide:
        init[:, [1, H + 1, 2 * H + 1, 3 * H + 1]] = 30.0  # every gate of unit 1 saturated on every row: dead
    else:
        init[[1, H + 1, 2 * H + 1, 3 * H + 1]] = 30.0
    _forward(rows, H, init, G if wide else 0, x, k_in, w_ih, hs, H, w_hh, ga, c, sums, alive)
    a = init.astype(np.float64) + x.astype(np.float64) @ w_ih + hs[0].astype(np.float64) @ w_hh
    i, f, g, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H : 2 * H]), np.tanh(a[:, 2 * H : 3 * H]), _sigmoid(a[:, 3 * H :])
    c_new = f * c[0] + i * g
    h_new = o * np.tanh(c_new)
    np.testing.assert_allclose(ga, np.hstack([i, f, g, o]), rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(c[1], c_new, rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(hs[1], h_new, rtol=1e-5, atol=2e-6)
    g32 = ga.astype(np.float64)
    flat = np.concatenate([g32[:, :H] * (1 - g32[:, :H]) < SIG_SAT, g32[:, H : 2 * H] * (1 - g32[:, H : 2 * H]) < SIG_SAT,
                           1 - g32[:, 2 * H : 3 * H] ** 2 < TANH_SAT, g32[:, 3 * H :] * (1 - g32[:, 3 * H :]) < SIG_SAT],
                          axis=1)
    assert sums[0] == flat.sum()
    h64 = hs[1].astype(np.float64)
    np.testing.assert_allclose(sums[1:], [h64.sum(), (h64 ** 2).sum(), g32[:, H : 2 * H].sum()], rtol=1e-5, atol=1e-6)
    unit_flat = flat.reshape(rows, 4, H).all(axis=1).all(axis=0)
    np.testing.assert_array_equal(alive, ~unit_flat | (np.arange(H) == 0))
    assert alive[1] == 0 and 0 < sums[0] < 4 * rows * H


@pytest.mark.parametrize("H", [16, 32, 64])
@pytest.mark.parametrize("product", [False, True])
@pytest.mark.parametrize("keep", [False, True])
def test_lstm_cell_backward_matches_numpy(H, product, keep):
    """dh = [keep] dh + da_{t+1} W_hh^T; da_t over the gates, dc carried, db and both norms."""
    rows, G = 13, 4 * H
    rng = np.random.default_rng(H + 2 * product + keep)
    k = G if product else 0
    gates = rng.uniform(0.05, 0.95, (rows, G))
    gates[:, 2 * H : 3 * H] = rng.uniform(-0.95, 0.95, (rows, H))
    ga = np.concatenate([rng.normal(0, 1, (rows, G)), gates]).astype(f32)  # [da_{t+1}; gates of step t]
    w = rng.normal(0, 1 / np.sqrt(G), (G, H)).astype(f32)
    dh, c = rng.normal(0, 1, (rows, H)).astype(f32), rng.normal(0, 1.5, (2, rows, H)).astype(f32)
    dc, db, sums = rng.normal(0, 1, (rows, H)).astype(f32), np.ones(G, f32), np.zeros(2)
    e = {name: v.astype(np.float64) for name, v in dict(ga=ga, w=w, dh=dh, c=c, dc=dc).items()}
    d = (e["dh"] if keep else 0.0) + (e["ga"][:rows] @ e["w"] if product else 0.0)
    i, f, g, o = (e["ga"][rows:, j * H : (j + 1) * H] for j in range(4))
    tc = np.tanh(e["c"][1])
    dct = e["dc"] + d * o * (1 - tc ** 2)
    da = np.hstack([dct * g * i * (1 - i), dct * e["c"][0] * f * (1 - f), dct * i * (1 - g ** 2), d * tc * o * (1 - o)])
    _backward(rows, H, k, ga, w, keep, dh, ga, c, dc, db, sums)
    np.testing.assert_allclose(dh, d, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ga[rows:], da, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dc, dct * f, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(db, 1 + da.sum(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sums, [np.sum(d ** 2), np.sum(da ** 2)], rtol=1e-5)


def _experiment(dtype, width, depth, n_in_task="adding", **extra):
    return gradtui.Experiment(gradtui.load_config("vanishing-sigmoid").with_overrides({
        "model.kind": "lstm", "model.depth": depth, "model.width": width, "model.activation": "tanh",
        "model.init": "xavier",
        "data.task": n_in_task, "data.seq_len": 20, "data.samples": 128, "train.batch_size": 13,
        "train.dtype": dtype, **extra}))


def _both(width, depth, scale=None, task="adding", **extra):
    """One step in float32 (the vector path) and float64 from the same weights and batch."""
    e32, e64 = _experiment("float32", width, depth, task, **extra), _experiment("float64", width, depth, task, **extra)
    for name, factor in (scale or {}).items():
        e64.layout.view(e64.theta, name)[:] *= factor
    x, y = e64.batch()
    return recurrent_step(e32, e64.theta.astype(f32), x, y), recurrent_step(e64, e64.theta, x, y)


@pytest.mark.parametrize("width, depth, task", [(64, 1, "adding"), (32, 2, "adding"), (16, 2, "copy")])
def test_float32_vector_lstm_step_matches_float64(width, depth, task):
    """Loss, every gradient and every statistic (time profile and forget-gate mean included) of
    the float32 step, on the vector path, against the float64 step, which is not; a large
    init gain saturates gates so the counts are exercised. The copy task's inputs are wide
    (one-hot channels: X W_ih for all steps first), the adding task's narrow."""
    (l32, g32, s32), (l64, g64, s64) = _both(width, depth, task=task, **{"model.init_gain": 4.0})
    np.testing.assert_allclose(l32, l64, rtol=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=0, atol=2e-5 * np.abs(g64).max())
    for name in s64:
        np.testing.assert_allclose(s32[name], s64[name], rtol=2e-4, atol=1e-6, err_msg=name)
    assert s64["saturation"][:depth].min() > 0  # the count is exercised


@pytest.mark.parametrize("scale", [{"output.W": 1e14}, {"rnn.0.W_ih": 1e-12, "rnn.0.b": 0.0}])
def test_vector_lstm_norms_and_statistics_hold_exploding_and_vanishing_values(scale):
    """dL/dh near 1e20 (squares overflow float32) and states near 1e-13 (squares underflow):
    the norms and act_std come out as in float64, through the float64 fallback."""
    (_, _, s32), (_, _, s64) = _both(64, 1, scale)
    for name in ("delta_norm", "time_delta_norm", "act_std", "act_mean"):
        assert np.isfinite(s32[name]).all(), name
        np.testing.assert_allclose(s32[name], s64[name], rtol=1e-4, atol=0, err_msg=name)
    assert s64["act_std"][0] < 1e-9 or s64["time_delta_norm"].max() > 1e19  # the range the test is about


def test_a_nan_input_reaches_the_loss_through_the_gates():
    exp = _experiment("float32", 64, 1)
    x, y = exp.batch()
    x = x.copy()
    x[3, 5, 0] = np.nan
    loss, grad, stats = recurrent_step(exp, exp.theta, x, y)
    assert np.isnan(loss) and np.isnan(stats["act_mean"][0]) and np.isnan(grad).any()
