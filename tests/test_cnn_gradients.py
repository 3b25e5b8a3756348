"""Finite-difference checks of every gradient the CNN engine computes (float64)."""

import itertools

import numpy as np
import pytest

from tests.cnn_nets import ACTIVATIONS, ARCHITECTURES, TASKS, cnn_experiment
from tests.gradcheck import numeric_gradient, relative_error


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
        analytic, numeric = numeric_gradient(exp, x, y, name, max_entries=12)
        err = relative_error(analytic, numeric)
        assert err <= 1e-6, f"{name}: relative error {err:.2e}"
        assert np.abs(analytic).max() > 0.0, f"{name}: no gradient at all"
        kinds.add(name.rsplit(".", 1)[1])
    expected = ({"W", "b"} | ({"gamma", "beta"} if "batchnorm" in arch else set())
                | ({"alpha"} if activation == "prelu" else set()) | ({"P"} if "residual" in arch else set()))
    assert kinds == expected


def test_gradients_have_no_side_effects():
    exp = cnn_experiment("tanh", "batchnorm+residual", "shapes")
    before = exp.params()
    x, y = exp.batch()
    loss1, g1 = exp.gradients(x, y)
    loss2, g2 = exp.gradients(x, y)
    assert loss1 == loss2
    for name in g1:
        np.testing.assert_array_equal(g1[name], g2[name])
        np.testing.assert_array_equal(before[name], exp.params()[name])
    np.testing.assert_array_equal(exp.network.running_mean, 0.0)
