"""The learning-rate schedule: the formula at chosen steps, and Experiment stepping with it."""

import math

import numpy as np
import pytest

import gradtui
from gradtui.engine.schedule import learning_rate


def train_section(**values):
    return gradtui.load_config("vanishing-sigmoid").with_overrides({f"train.{k}": v for k, v in values.items()}).train


@pytest.mark.parametrize("t,factor", [(0, 0.1), (4, 0.5), (9, 1.0), (10, 1.0), (500, 1.0)])
def test_linear_warmup_then_constant(t, factor):
    assert learning_rate(train_section(lr=0.01, warmup_steps=10), t) == pytest.approx(0.01 * factor, rel=1e-12)


@pytest.mark.parametrize("schedule,t,factor", [
    ("linear", 10, 1.0), ("linear", 60, 0.5), ("linear", 110, 0.0), ("linear", 200, 0.0),
    ("cosine", 10, 1.0), ("cosine", 35, 0.5 * (1 + math.cos(math.pi * 0.25))), ("cosine", 60, 0.5), ("cosine", 110, 0.0),
])
def test_decay_after_warmup_equals_the_formula(schedule, t, factor):
    tr = train_section(lr=0.2, warmup_steps=10, steps=110, schedule=schedule)
    assert learning_rate(tr, t) == pytest.approx(0.2 * factor, abs=1e-15)
    assert learning_rate(tr, 4) == pytest.approx(0.2 * 0.5)  # warmup still applies first


def test_without_warmup_or_decay_the_rate_is_constant():
    tr = train_section(lr=0.3)
    assert {learning_rate(tr, t) for t in (0, 1, 100, 10**6)} == {0.3}


@pytest.mark.parametrize("preset", ["vanishing-sigmoid", "lstm-adding"])
def test_experiment_steps_with_the_scheduled_rate(preset):
    """SGD's update is exactly lr(t) g: the first steps of a warmed-up run move the weights by
    (t+1)/W of what the same gradient moves them without warmup, for the MLP's fused kernel
    and the recurrent path alike."""
    base = gradtui.load_config(preset).with_overrides({"train.optimizer": "sgd", "train.dtype": "float64", "train.clip": "none"})
    warm = base.with_overrides({"train.warmup_steps": 4})
    plain, warmed = gradtui.Experiment(base), gradtui.Experiment(warm)
    for t in range(3):
        x, y = warmed.batch()
        _, grads = warmed.gradients(x, y)
        before = warmed.params()
        warmed.run(1)
        after = warmed.params()
        name = next(k for k in before if k.endswith("W") or k.endswith("W_ih"))
        step = before[name] - after[name]
        np.testing.assert_allclose(step, base.train.lr * (t + 1) / 4 * grads[name], rtol=1e-9, atol=1e-14)
        assert warmed.current_lr == pytest.approx(base.train.lr * min(1.0, (t + 2) / 4))
    assert plain.current_lr == base.train.lr


def test_fused_runs_of_several_steps_follow_the_schedule():
    """run(k) takes the same steps as k calls of run(1) when the rate changes every step."""
    cfg = gradtui.load_config("vanishing-sigmoid").with_overrides({"train.warmup_steps": 5, "train.schedule": "cosine", "train.steps": 20})
    a, b = gradtui.Experiment(cfg), gradtui.Experiment(cfg)
    many = a.run(8)
    single = [b.run(1)[0] for _ in range(8)]
    assert [r.loss for r in many] == [r.loss for r in single]
    np.testing.assert_array_equal(a.theta, b.theta)
    assert a.schedule_step == 8


def test_changing_the_warmup_or_schedule_restarts_training():
    """A warmup shapes the start of training: turning it on restarts with fresh weights, so the
    new schedule starts at its first step."""
    from gradtui.config.changes import restart_keys

    cfg = gradtui.load_config("vanishing-sigmoid")
    assert restart_keys(cfg, cfg.with_overrides({"train.warmup_steps": 10})) == ["train.warmup_steps"]
    assert restart_keys(cfg, cfg.with_overrides({"train.schedule": "cosine"})) == ["train.schedule"]
    fresh = gradtui.Experiment(cfg.with_overrides({"train.warmup_steps": 10}))
    assert fresh.current_lr == pytest.approx(cfg.train.lr / 10)
