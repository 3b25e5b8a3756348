"""The tanh and sigmoid layers' one-pass forward: activate_output (bias and phi, writing only H)
and the statistics with phi' recomputed from H, against the two-pass path they replace
(add_row, activate writing H and D, _layer_stats reading D) and against NumPy.

The one-pass path computes the same float32 expressions, so H and every statistic must agree
to the bit; against np.tanh the float32 rational keeps within 3e-7 absolute (its largest
error, 2.3e-7 near |y| = 8, where it returns exactly +-1 while tanh is 2e-7 short of it, is
four units in the last place of values near 1)."""

import numpy as np
import pytest

from gradtui.engine.activations import SIGMOID, TANH, activate, activate_output
from gradtui.engine.blocks import add_row
from gradtui.engine.mlp_kernel import _layer_stats, _layer_stats_from_output

rng = np.random.default_rng(3)
SHAPES = [(5, 7), (64, 64), (33, 32), (1, 1)]


def two_pass(code, z, bias, exact):
    y = z.copy()
    add_row(y, bias)
    h, d = np.empty_like(y), np.empty_like(y)
    activate(code, y, h, d, 0.0, bias, 1.0, exact)
    return h, d


def layer_stats(stats, *args):
    out = [np.zeros(1) for _ in range(4)]
    alive = np.zeros(args[0].shape[1], np.uint8)
    if stats is _layer_stats:
        _layer_stats(args[0], args[1], args[2], alive, *out, 0)
    else:
        _layer_stats_from_output(args[0], args[1], args[2], alive, *out, 0)
    return [o[0] for o in out]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("code", [TANH, SIGMOID])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_pass_equals_the_two_pass_path_to_the_bit(shape, code, dtype):
    z = (3.0 * rng.standard_normal(shape)).astype(dtype)
    z.flat[0] = 12.0  # beyond the rational's clamp
    bias = rng.standard_normal(shape[1]).astype(dtype)
    exact = dtype == np.float64
    h_ref, d_ref = two_pass(code, z, bias, exact)
    h = np.full_like(z, np.nan)
    activate_output(code, z, bias, h, exact)
    np.testing.assert_array_equal(h, h_ref)
    limit = 0.05 if code == TANH else 0.0125
    assert layer_stats(_layer_stats_from_output, h, code == SIGMOID, limit) == \
        layer_stats(_layer_stats, h_ref, d_ref, limit)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_pass_tanh_and_sigmoid_against_numpy(dtype):
    z = np.linspace(-20, 20, 4001).astype(dtype).reshape(1, -1)
    bias = np.zeros(z.shape[1], dtype)
    y = z.astype(np.float64)
    tol = 3e-7 if dtype == np.float32 else 1e-15
    for code, reference in ((TANH, np.tanh(y)), (SIGMOID, 1.0 / (1.0 + np.exp(-y)))):
        h = np.empty_like(z)
        activate_output(code, z, bias, h, dtype == np.float64)
        np.testing.assert_allclose(h, reference, rtol=0, atol=tol)


def test_dead_units_and_saturation_from_the_output():
    """Units whose tanh output is exactly +-1 on the whole batch have phi' = 0: dead. Taken from
    H alone, the counts match those from the stored phi'."""
    z = rng.standard_normal((40, 9)).astype(np.float32)
    z[:, 2] = 30.0  # tanh = 1 exactly in float32
    z[:, 6] = -30.0
    z[5, 4] = 30.0  # one saturated element is not a dead unit
    bias = np.zeros(9, np.float32)
    h_ref, d_ref = two_pass(TANH, z, bias, False)
    h = np.empty_like(z)
    activate_output(TANH, z, bias, h, False)
    mean, std, dead, saturation = layer_stats(_layer_stats_from_output, h, False, 0.05)
    assert dead == pytest.approx(2 / 9)
    assert saturation >= 81 / 360
    assert [mean, std, dead, saturation] == layer_stats(_layer_stats, h_ref, d_ref, 0.05)
