"""The shared array kernels: the bias broadcast, the transpose and D W^T on both of its routes."""

import numpy as np
import pytest

from gradtui.engine.blocks import TRANSPOSE_MAX_WEIGHTS, add_row, dot_transposed, transpose_into


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fan_in,fan_out", [(16, 24), (64, 64), (128, 96)])
def test_dot_transposed_matches_numpy(dtype, fan_in, fan_out):
    """Small weights go through a transpose into scratch, large ones through BLAS's
    transposed operand; the (128, 96) case is above the threshold, the others below."""
    rng = np.random.default_rng(0)
    d = rng.standard_normal((32, fan_out)).astype(dtype)
    w = rng.standard_normal((fan_in, fan_out)).astype(dtype)
    out = np.empty((32, fan_in), dtype)
    scratch = np.full(fan_in * fan_out, np.nan, dtype)
    dot_transposed(d, w, out, scratch)
    np.testing.assert_allclose(out, d @ w.T, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    assert np.isnan(scratch).all() == (fan_in * fan_out > TRANSPOSE_MAX_WEIGHTS)


def test_add_row_adds_the_bias_to_every_row():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    expected = a + np.array([1, 2, 3, 4], np.float32)
    add_row(a, np.array([1, 2, 3, 4], np.float32))
    np.testing.assert_array_equal(a, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 64), (32, 32), (24, 16), (13, 21), (8, 3), (2, 64), (64, 2)])
def test_transpose_into_writes_the_exact_transpose(dtype, shape):
    """Whole 8 x 8 blocks go through vector shuffles, the edges element by element: every
    entry lands where a.T has it, and the scratch past the transpose stays untouched."""
    a = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    scratch = np.full(a.size + 8, np.nan, dtype)
    out = transpose_into(a, scratch)
    np.testing.assert_array_equal(out, a.T)
    assert np.isnan(scratch[a.size:]).all()
