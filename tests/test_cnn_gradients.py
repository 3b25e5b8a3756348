"""Finite-difference checks of every gradient the CNN engine computes (float64).

A convolution's weight reaches every pixel of every later layer, thousands of units even in
these small nets, so a stencil of +-2e-4 often moves some relu-type pre-activation across its
kink, where the finite difference is not a derivative. An entry whose stencil changes which
units sit on the positive side (the engine's phi' pattern) is retried with a smaller stencil,
and replaced by another entry if that too crosses a kink;
every parameter still gets at least MIN_ENTRIES checked entries.
"""

import itertools

import numpy as np
from conftest import assert_gradients_have_no_side_effects
import pytest

from tests.cnn_nets import ACTIVATIONS, ARCHITECTURES, TASKS, cnn_experiment
from tests.gradcheck import STENCIL, STEP, relative_error

ENTRIES, MIN_ENTRIES = 12, 6
# A kinked entry is retried with a 100 times smaller stencil (rounding error ~1e-9 on a loss of
# order 1, still inside relative_error's tolerance) before another entry replaces it.
STEPS = (STEP, STEP / 100)


def smooth_numeric_gradient(exp, x, y, name):
    """Analytic and numeric gradients of ``name`` at up to ENTRIES entries whose stencil crosses no kink."""
    base = exp.params()[name].copy()
    _, grads = exp.gradients(x, y)
    pattern = exp.network.active_pattern(len(x)).copy()
    analytic, numeric = [], []
    for idx in np.random.default_rng(0).permutation(base.size):
        for step in STEPS:
            total, kinked = 0.0, False
            for offset, weight in STENCIL:
                bumped = base.copy().ravel()
                bumped[idx] += offset * step
                exp.set_params({name: bumped.reshape(base.shape)})
                total += weight * exp.gradients(x, y)[0]
                kinked |= not np.array_equal(exp.network.active_pattern(len(x)), pattern)
            if not kinked:
                analytic.append(grads[name].ravel()[idx])
                numeric.append(total / step)
                break
        if len(analytic) == ENTRIES:
            break
    exp.set_params({name: base})
    assert len(analytic) >= min(MIN_ENTRIES, base.size), f"{name}: only {len(analytic)} entries away from kinks"
    return np.array(analytic), np.array(numeric)


@pytest.mark.parametrize("activation,arch,task", list(itertools.product(ACTIVATIONS, ARCHITECTURES, TASKS)))
def test_every_parameter_matches_finite_differences(activation, arch, task):
    exp = cnn_experiment(activation, arch, task)
    if activation == "prelu":  # move the slopes off their shared initial value
        for name in exp.params():
            if name.endswith(".alpha"):
                exp.set_params({name: np.array([0.05, 0.3, 0.6])})
    x, y = exp.batch()
    kinds = set()
    for name in exp.params():
        analytic, numeric = smooth_numeric_gradient(exp, x, y, name)
        err = relative_error(analytic, numeric)
        assert err <= 1e-6, f"{name}: relative error {err:.2e}"
        assert np.abs(analytic).max() > 0.0, f"{name}: no gradient at all"
        kinds.add(name.rsplit(".", 1)[1])
    expected = ({"W", "b"} | ({"gamma", "beta"} if "batchnorm" in arch else set())
                | ({"alpha"} if activation == "prelu" else set()) | ({"P"} if "residual" in arch else set()))
    assert kinds == expected


def test_a_wrong_gradient_is_caught():
    """The check can fail: a gradient off by 0.1% in one entry exceeds its tolerance."""
    exp = cnn_experiment("tanh", "residual", "digits")
    x, y = exp.batch()
    analytic, numeric = smooth_numeric_gradient(exp, x, y, "conv.1.P")
    analytic[0] *= 1.001
    assert relative_error(analytic, numeric) > 1e-6


def test_gradients_have_no_side_effects():
    exp = cnn_experiment("tanh", "batchnorm+residual", "shapes")
    assert_gradients_have_no_side_effects(exp)
