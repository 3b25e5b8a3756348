"""The float32 layer statistics against float64 NumPy on the same float32 activations.

_layer_stats sums each row in float32 (shifted by the layer's first value) and redoes a row
in float64 when its sum of squares leaves [1e-20, 1e30]. These are the cases that breaks
without the shift or the redo; the tolerance, rtol 1e-5, is far above float32 rounding of
the shifted sums (~1e-7) and far below what cancellation or overflow would cost."""

import numpy as np
import pytest

from gradtui.engine.mlp_kernel import _layer_stats

rng = np.random.default_rng(0)
CASES = {
    "near constant (mean 10, std 1e-3)": 10 + 1e-3 * rng.standard_normal((64, 64)),
    "saturated tanh (1 - ~1e-4)": np.tanh(4.5 + 0.3 * rng.standard_normal((64, 64))),
    "huge (1e37)": 1e37 * (1 + 0.01 * rng.standard_normal((64, 64))),
    "tiny (1e-25)": 1e-25 * rng.standard_normal((64, 64)),
    "mixed rows": np.vstack([1e20 * rng.standard_normal((32, 64)), rng.standard_normal((32, 64))]),
}


def stats(h):
    h = h.astype(np.float32)
    d = np.ones_like(h)
    out = [np.zeros(1) for _ in range(4)]
    _layer_stats(h, d, 0.05, np.zeros(h.shape[1], np.uint8), *out, 0)
    return h, out


@pytest.mark.parametrize("name", list(CASES))
def test_float32_mean_and_std_match_float64(name):
    h, (mean, std, dead, saturation) = stats(CASES[name])
    exact = h.astype(np.float64)
    assert mean[0] == pytest.approx(exact.mean(), rel=1e-5, abs=1e-30)
    assert std[0] == pytest.approx(exact.std(), rel=1e-5)
    assert dead[0] == 0.0 and saturation[0] == 0.0


def test_a_nonfinite_value_makes_the_statistics_nonfinite():
    h = np.ones((8, 8))
    h[3, 5] = np.nan
    _, (mean, std, _, _) = stats(h)
    assert np.isnan(mean[0]) and np.isnan(std[0])
