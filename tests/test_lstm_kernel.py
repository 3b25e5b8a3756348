"""The LSTM backward pass's float32 paths (gradtui.engine.lstm_kernel) against its float64 maths,
on odd shapes and at exploding and vanishing scales, and the uncounted views it takes
(gradtui.engine.borrowed)."""

import numpy as np
import pytest
from numba import njit

from gradtui.engine.borrowed import borrowed
from gradtui.engine.lstm_kernel import lstm_backward
from gradtui.engine.prefetch import prefetch_lines
from gradtui.engine.rnn_kernel import LayerGradients, add_bias_gradient


@pytest.mark.parametrize("scale", [1e25, 1e-25, 1.0])
def test_add_bias_gradient_sums_columns_and_squares_as_float64_does(scale):
    """db += the column sums of da; ||da||^2 summed in float32 must hold where a float32 square
    overflows (1e25) or underflows (1e-25), as the float64 sum does."""
    da = (np.random.default_rng(3).standard_normal((3, 20)) * scale).astype(np.float32)
    db = np.full(20, 0.5 * scale, np.float32)
    sq = add_bias_gradient(da, db)
    exact = da.astype(np.float64)
    np.testing.assert_allclose(db, 0.5 * scale + exact.sum(axis=0), rtol=1e-5, atol=1e-6 * scale)
    assert np.isfinite(sq)
    np.testing.assert_allclose(sq, np.sum(exact * exact), rtol=1e-5)


def _backward(dtype, n_in, scale):
    """lstm_backward on random gates, cells and outside gradients (T 5, B 3, H 5: no vector
    width divides them), in ``dtype``; returns everything it writes."""
    T, B, H = 5, 3, 5
    rng = np.random.default_rng(7)
    gates = rng.uniform(0.05, 0.95, (T, B, 4 * H))
    gates[:, :, 2 * H : 3 * H] = rng.uniform(-0.95, 0.95, (T, B, H))  # g = tanh, the others sigmoids
    arrays = {
        "inp": rng.standard_normal((T, B, n_in)), "HS": rng.uniform(-1, 1, (T + 1, B, H)),
        "W_ih": rng.standard_normal((n_in, 4 * H)), "W_hh": rng.standard_normal((H, 4 * H)) / H,
        "GA": gates, "C": rng.standard_normal((T + 1, B, H)), "DH_IN": rng.standard_normal((T, B, H)) * scale,
    }
    a = {k: v.astype(dtype) for k, v in arrays.items()}
    a["HS"][0] = 0.0
    a["C"][0] = 0.0
    g = LayerGradients(np.zeros((n_in, 4 * H), dtype), np.zeros((H, 4 * H), dtype), np.zeros(4 * H, dtype),
                       np.zeros((T, B, n_in), dtype), True, np.zeros((4 * H, H), dtype))
    time_norm = np.zeros(T)
    sq = lstm_backward(a["inp"], a["HS"], a["W_ih"], a["W_hh"], a["GA"], a["C"], a["DH_IN"], 3,
                       np.zeros((B, 4 * H), dtype), np.zeros((B, H), dtype), g, time_norm, True, dtype == np.float64)
    return sq, time_norm, g.dW_ih, g.dW_hh, g.db, g.DX, a["DH_IN"]


@pytest.mark.parametrize("n_in", [2, 11])  # narrow (one product per step) and wide inputs
@pytest.mark.parametrize("scale", [1.0, 1e22, 1e-22])
def test_lstm_backward_in_float32_matches_its_float64_maths(n_in, scale):
    """Gradients, ||dL/da||^2 and the time profile ||dL/dh_t|| (float32 sums of squares with their
    float64 redo) agree with the float64 pass (checked by finite differences elsewhere)."""
    ours = _backward(np.float32, n_in, scale)
    exact = _backward(np.float64, n_in, scale)
    for name, a, b in zip(["sq", "time_norm", "dW_ih", "dW_hh", "db", "DX", "DH_IN"], ours, exact):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        assert np.all(np.isfinite(a)), name
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5 * np.max(np.abs(b)), err_msg=name)


@njit(cache=True)  # kept with the kernels in their cache: compiled once, not at every run
def _through_borrowed_views(a):
    b = borrowed(a)
    total = 0.0
    for i in range(b.shape[0]):
        row = b[i]
        tail = row[1:]
        tail[0] += 1.0  # written through a view of a view
        total += row.sum()
    return total


def test_views_of_a_borrowed_array_read_and_write_the_array_itself():
    a = np.arange(12.0).reshape(3, 4)
    total = _through_borrowed_views(a)
    expected = np.arange(12.0).reshape(3, 4)
    expected[:, 1] += 1.0
    np.testing.assert_array_equal(a, expected)
    assert total == expected.sum()


@njit(cache=True)  # kept with the kernels in their cache: compiled once, not at every run
def _prefetch_then_sum(a):
    prefetch_lines(a[3:])
    return a.sum()


def test_a_prefetch_changes_nothing():
    a = np.arange(100, dtype=np.float32)
    before = a.copy()
    assert _prefetch_then_sum(a) == before.sum()
    np.testing.assert_array_equal(a, before)
