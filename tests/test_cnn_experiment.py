"""The CNN behind the Experiment API: config errors, statistics, swaps that carry weights
over, float32 training that learns."""

import dataclasses

import numpy as np
import pytest

import gradtui
from gradtui.config import ConfigError
from gradtui.config.summary import model_summary
from gradtui.engine import cnn_kernel as K
from gradtui.tasks import make_dataset
from tests.cnn_nets import cnn_config, cnn_experiment


def digits_cnn(**overrides):
    base = {"model.kind": "cnn", "data.task": "digits"}
    return gradtui.load_config("vanishing-sigmoid").with_overrides({**base, **overrides})


@pytest.mark.parametrize("overrides,words", [
    ({"model.stages": 3}, ["2x2", "3x3 kernel", "model.stages <= 2"]),
    ({"model.depth": 4, "model.stages": 3}, ["model.stages = 3", "model.depth >= 6"]),
    ({"data.task": "shapes", "data.image_size": 4, "model.stages": 2}, ["2x2", "model.stages <= 1"]),
    ({"data.task": "spirals"}, ["not allowed for model.kind 'cnn'", "digits, shapes"]),
    ({"model.recurrent_gain": 2.0}, ["applies only to model.kind"]),
])
def test_bad_cnn_configs_say_what_is_allowed(overrides, words):
    with pytest.raises(ConfigError) as err:
        digits_cnn(**overrides)
    for word in words:
        assert word in str(err.value)


def test_image_tasks_and_stages_are_refused_elsewhere():
    with pytest.raises(ConfigError, match="not allowed for model.kind 'mlp'"):
        gradtui.load_config("vanishing-sigmoid").with_overrides({"data.task": "digits"})
    with pytest.raises(ConfigError, match="model.stages applies only to model.kind cnn"):
        gradtui.load_config("vanishing-sigmoid").with_overrides({"model.stages": 2})


def test_labels_out_of_range_are_refused():
    """Experiment checks a user's Dataset first (ValueError naming the labels' range); the CNN's
    own check (ConfigError, a ValueError) stands behind it for data that skips that path."""
    cfg = cnn_config()
    data = make_dataset(cfg)
    bad = dataclasses.replace(data, y_train=np.where(data.y_train == 3, 10, data.y_train))
    with pytest.raises(ValueError, match="0 to 9"):
        gradtui.Experiment(cfg, data=bad)
    from gradtui.engine.cnn import CNNNetwork

    with pytest.raises(ConfigError, match="labels must be integers from 0 to 9"):
        CNNNetwork(cfg, bad, np.float64)


def test_tasks_give_standardised_images_of_every_class():
    digits = make_dataset(digits_cnn())
    assert digits.x_train.shape[1] == 64 and digits.n_out == 10
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert set(np.unique(digits.y_train)) == set(range(10))
    shapes = make_dataset(digits_cnn(**{"data.task": "shapes"}))
    assert shapes.x_train.shape[1] == 256 and shapes.n_out == 3
    both = np.concatenate([shapes.x_train, shapes.x_test])
    assert abs(both.mean()) < 1e-9 and abs(both.std() - 1.0) < 1e-9


def test_summary_names_the_cnn_and_its_images():
    cfg = digits_cnn(**{"model.depth": 20, "model.width": 16, "model.activation": "tanh", "model.residual": True})
    assert model_summary(cfg).startswith("cnn 20x16 tanh · 8x8 digits · ")
    assert "ResNet" in model_summary(cfg)


def test_records_have_every_statistic_per_convolution_plus_the_head():
    exp = cnn_experiment("relu", "batchnorm+residual", "digits", **{"train.dtype": "float32"})
    assert exp.layer_names == ["conv.0", "conv.1", "conv.2", "conv.3", "output"]
    records = exp.run(3)
    rec = records[-1]
    for name in ("grad_norm", "delta_norm", "weight_norm", "update_ratio", "act_mean", "act_std", "dead_fraction", "saturation"):
        values = getattr(rec, name)
        assert values.shape == (5,) and np.all(np.isfinite(values)), name
    assert np.all(rec.grad_norm > 0) and np.all(rec.update_ratio > 0) and np.all(rec.act_std > 0)
    # grad_norm is the norm of each layer's weight gradients (kernel and projection)
    exp64 = cnn_experiment("relu", "batchnorm+residual", "digits")
    exp64.set_params(exp.params())
    x, y = exp64.batch()
    _, grads = exp64.gradients(x, y)
    norms = exp64.run(1)[0].grad_norm
    expected = np.sqrt(np.sum(grads["conv.1.W"] ** 2) + np.sum(grads["conv.1.P"] ** 2))
    assert norms[1] == pytest.approx(expected, rel=1e-9)


def test_dead_fraction_counts_channels_dead_on_the_whole_batch():
    exp = cnn_experiment("relu", "plain", "digits", **{"model.bias_init": -100.0})
    rec = exp.step()
    np.testing.assert_array_equal(rec.dead_fraction[:-1], 1.0)
    assert rec.dead_fraction[-1] == 0.0


def test_saturation_of_a_large_init_sigmoid():
    exp = cnn_experiment("sigmoid", "plain", "digits", **{"model.init_gain": 30.0})
    rec = exp.step()
    assert np.all(rec.saturation[1:-1] > 0.5)


@pytest.mark.parametrize("change", [{"model.residual": True}, {"model.batchnorm": True},
                                    {"model.activation": "relu"}, {"train.clip": "norm"}, {"train.optimizer": "adam"}])
def test_carry_over_changes_keep_every_weight(change):
    exp = cnn_experiment("tanh", "plain", "shapes", **{"train.dtype": "float32"})
    exp.run(3)
    before = exp.params()
    exp.reconfigure(exp.cfg.with_overrides(change))
    after = exp.params()
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)
    assert exp.run(2)[-1].nonfinite is False


def test_depth_change_needs_a_restart():
    exp = cnn_experiment()
    with pytest.raises(ConfigError, match="model.depth"):
        exp.reconfigure(exp.cfg.with_overrides({"model.depth": 6}))


def test_a_float32_cnn_learns_digits():
    cfg = digits_cnn(**{"model.depth": 4, "model.width": 8, "model.activation": "relu", "model.init": "he",
                        "train.optimizer": "adam", "train.lr": 0.01, "train.batch_size": 32})
    exp = gradtui.Experiment(cfg)
    before = exp.evaluate()["accuracy"]
    exp.run(150)
    after = exp.evaluate()
    assert before < 0.3 and after["accuracy"] > 0.8, (before, after)


def test_a_nonfinite_step_is_not_applied():
    exp = cnn_experiment("relu", "plain", "digits", **{"train.dtype": "float32", "train.lr": 1000.0,
                                                              "model.init_gain": 100.0})
    records = exp.run(50)
    assert records[-1].nonfinite
    assert all(np.all(np.isfinite(v)) for v in exp.params().values())


def test_dead_fraction_of_channels_dead_on_part_of_the_batch():
    """The kernel counts deadness over rows of 8 positions: a channel dead at some positions
    of each row but alive elsewhere in the batch is alive."""
    exp = cnn_experiment("relu", "plain", "digits", **{"model.bias_init": -0.6, "train.batch_size": 8})
    rec = exp.step()
    net = exp.network
    active = net.active_pattern(8)  # phi' == 1 over every layer's block, as the step left it
    partly = 0
    for l, row in enumerate(net.table[:-1]):
        c, n, start = row[K.COL_C_OUT], 8 * row[K.COL_S_OUT] ** 2, 8 * row[K.COL_OFF]
        block = active[start : start + n * c].reshape(n, c)
        by_position = block.reshape(-1, 8, c).any(axis=0)  # alive at positions i = t mod 8
        partly += int(np.sum(~by_position.all(axis=0) & block.any(axis=0)))
        assert rec.dead_fraction[l] == pytest.approx(np.mean(~block.any(axis=0)))
    assert partly > 0, "no channel is dead on only part of the batch: the case this test is for"
