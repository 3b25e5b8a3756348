"""The reference tier (plain NumPy) and the kernel tier compute the same training run, and an
Experiment started on the reference tier swaps to the kernels between two steps without a jump."""

import numpy as np
import pytest

import gradtui
from gradtui.engine import tiers
from gradtui.engine.experiment import Experiment

STEPS = 50
# float32 agreement after STEPS steps: the tiers round differently (NumPy's exact tanh and
# pairwise sums against the kernels' rational tanh and fused loops), and training carries
# those last-bit differences forward. Fractions of units (dead, saturated) may differ by
# an element or two at a threshold: 2 / (units x batch x steps) at most.
RTOL, ATOL = 2e-3, 1e-5
FRACTION_ATOL = 1e-3
ACCURACY_ATOL = 0.02

RECURRENT = {"data.seq_len": 10, "data.samples": 256, "train.batch_size": 8, "model.width": 12, "model.depth": 2}


def config(overrides):
    return gradtui.load_config("vanishing-sigmoid").with_overrides(
        {"model.depth": 4, "model.width": 16, "train.batch_size": 16, "data.samples": 512, **overrides})


def assert_runs_agree(cfg, steps=STEPS):
    kernels, reference = Experiment(cfg, tier="kernels"), Experiment(cfg, tier="reference")
    assert (kernels.tier, reference.tier) == ("kernels", "reference")
    for _ in range(steps):
        a, b = kernels.step().to_dict(), reference.step().to_dict()
        assert a.keys() == b.keys()
        for key, va in a.items():
            if isinstance(va, (bool, str)) or va is None:
                assert va == b[key], (a["step"], key)
                continue
            fraction = key in ("dead_fraction", "saturation")
            np.testing.assert_allclose(b[key], va, rtol=RTOL, atol=FRACTION_ATOL if fraction else ATOL,
                                       err_msg=f"step {a['step']}: {key}")
    ea, eb = kernels.evaluate(), reference.evaluate()
    assert ea.keys() == eb.keys()
    assert eb["loss"] == pytest.approx(ea["loss"], rel=RTOL)
    if "accuracy" in ea:  # an example at the decision boundary may fall either way
        assert eb["accuracy"] == pytest.approx(ea["accuracy"], abs=ACCURACY_ATOL)


MLP_CASES = [
    {"model.activation": "tanh", "model.init": "xavier"},
    {"model.activation": "sigmoid", "model.init": "normal"},
    {"model.activation": "relu", "model.init": "he", "train.optimizer": "momentum"},
    {"model.activation": "leaky_relu", "model.init": "he", "train.optimizer": "rmsprop", "train.lr": 0.003},
    {"model.activation": "prelu", "model.init": "he", "train.clip": "norm", "train.clip_threshold": 0.5},
    {"model.activation": "elu", "model.init": "he", "train.clip": "value", "train.clip_threshold": 0.01},
    {"model.batchnorm": True, "train.optimizer": "adam", "train.lr": 0.003},
    {"model.batchnorm": True, "model.residual": True, "model.activation": "linear"},
    {"model.residual": True, "model.activation": "relu", "train.weight_decay": 0.01},
    {"data.task": "teacher", "model.activation": "tanh", "model.init": "xavier"},
]


@pytest.mark.parametrize("overrides", MLP_CASES, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_mlp_tiers_agree(overrides):
    assert_runs_agree(config(overrides))


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("task", ["adding", "copy", "sine"])
def test_recurrent_tiers_agree(kind, task):
    assert_runs_agree(config({**RECURRENT, "model.kind": kind, "data.task": task, "model.activation": "tanh",
                              "train.optimizer": "adam", "train.lr": 0.003, "train.clip": "norm"}))


def test_relu_rnn_tiers_agree():
    assert_runs_agree(config({**RECURRENT, "model.kind": "rnn", "data.task": "adding", "model.activation": "relu",
                              "model.recurrent_init": "identity"}))


LSTM = {**RECURRENT, "model.kind": "lstm", "model.activation": "tanh", "data.task": "adding",
        "train.optimizer": "adam", "train.lr": 0.003}


def test_auto_tier_trains_on_numpy_first_and_carries_on_with_the_kernels(monkeypatch):
    cfg = config(LSTM)
    monkeypatch.setattr(tiers, "kernels_cached", lambda cfg: False)  # as on a fresh install
    auto, kernels = Experiment(cfg, tier="auto"), Experiment(cfg, tier="kernels")
    assert auto.tier == "reference"  # it swaps only between steps
    records = [auto.step() for _ in range(3)]
    before, state = auto.params(), [s.copy() for s in auto._state[:2]]
    assert auto.wait_for_kernels(timeout=600)
    assert auto.tier == "kernels" and auto.warmup is None
    for name, value in auto.params().items():  # the swap itself changes nothing
        np.testing.assert_array_equal(value, before[name])
    for saved, now in zip(state, auto._state[:2]):
        np.testing.assert_array_equal(saved, now)
    records += [auto.step() for _ in range(5)]
    assert [r.step for r in records] == list(range(1, 9))
    expected = [kernels.step().loss for _ in range(8)]
    np.testing.assert_allclose([r.loss for r in records], expected, rtol=RTOL)


def test_auto_tier_uses_cached_kernels_at_once():
    cfg = config(LSTM)
    Experiment(cfg, tier="kernels").run(1)  # compiles (or loads) them into the cache
    Experiment(cfg, tier="kernels").evaluate()
    assert tiers.kernels_cached(cfg)
    exp = Experiment(cfg, tier="auto")
    assert exp.tier == "kernels" and exp.warmup is None


def test_unknown_tier_is_refused_with_the_allowed_ones():
    with pytest.raises(ValueError, match="auto, reference, kernels"):
        Experiment(config({}), tier="numba")
