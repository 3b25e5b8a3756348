"""Finite-difference checks of every gradient the MLP engine computes (float64)."""

import itertools

import numpy as np
from conftest import assert_gradients_have_no_side_effects
import pytest

import gradtui
from tests.gradcheck import numeric_gradient, relative_error

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "linear")
ARCHITECTURES = {"plain": {}, "batchnorm": {"model.batchnorm": True}, "residual": {"model.residual": True},
                 "batchnorm+residual": {"model.batchnorm": True, "model.residual": True}}
TASKS = {"classification": {"data.task": "spirals"}, "regression": {"data.task": "teacher"}}


def small_experiment(activation, arch, task, **extra):
    overrides = {
        "model.depth": 3, "model.width": 6, "model.activation": activation, "model.init": "xavier_normal",
        "model.init_gain": 1.5, "model.bias_std": 0.3, "train.dtype": "float64", "train.batch_size": 8,
        "data.samples": 64, **ARCHITECTURES[arch], **TASKS[task], **extra,
    }
    if task == "regression":
        overrides["data.features"] = 6  # equal widths, so the first layer is residual too
    else:
        overrides["data.classes"] = 3
    cfg = gradtui.load_config("vanishing-sigmoid").with_overrides(overrides)
    return gradtui.Experiment(cfg)


@pytest.mark.parametrize("activation,arch,task", list(itertools.product(ACTIVATIONS, ARCHITECTURES, TASKS)))
def test_every_parameter_matches_finite_differences(activation, arch, task):
    exp = small_experiment(activation, arch, task)
    if activation == "prelu":  # move the slopes off their shared initial value
        for name in exp.params():
            if name.endswith(".alpha"):
                exp.set_params({name: np.linspace(0.05, 0.6, 6)})
    x, y = exp.batch()
    kinds = set()
    for name in exp.params():
        analytic, numeric = numeric_gradient(exp, x, y, name, max_entries=25)
        err = relative_error(analytic, numeric)
        assert err <= 1e-6, f"{name}: relative error {err:.2e}"
        kinds.add(name.rsplit(".", 1)[1])
    expected = {"W", "b"} | ({"gamma", "beta"} if "batchnorm" in arch else set()) | ({"alpha"} if activation == "prelu" else set())
    assert kinds == expected


def test_gradients_have_no_side_effects():
    exp = small_experiment("tanh", "batchnorm", "classification")
    assert_gradients_have_no_side_effects(exp)
