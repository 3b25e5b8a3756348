"""Bad input for recurrent configs: every mistake is a ConfigError naming the key and what is allowed."""

import pytest

import gradtui
from gradtui import ConfigError

RNN = {"model.kind": "rnn", "model.activation": "tanh", "data.task": "adding"}


@pytest.mark.parametrize("overrides,words", [
    ({"model.recurrent_init": "identity"}, ["model.recurrent_init", "rnn / lstm / gru", "mlp"]),
    ({"model.recurrent_gain": 2.0}, ["model.recurrent_gain", "rnn / lstm / gru"]),
    ({"model.forget_bias": 2.0}, ["model.forget_bias", "lstm"]),
    ({"data.seq_len": 10}, ["data.seq_len", "adding / copy / sine"]),
    ({"data.task": "adding"}, ["data.task", "spirals"]),
], ids=["recurrent_init-on-mlp", "recurrent_gain-on-mlp", "forget_bias-on-mlp", "seq_len-on-mlp", "adding-on-mlp"])
def test_recurrent_keys_on_an_mlp(overrides, words):
    with pytest.raises(ConfigError) as err:
        gradtui.load_config("vanishing-sigmoid").with_overrides(overrides)
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("overrides,words", [
    ({"model.batchnorm": True}, ["model.batchnorm", "mlp"]),
    ({"model.residual": True}, ["model.residual", "mlp"]),
    ({"model.bias_init": -1.0}, ["model.bias_init", "mlp"]),
    ({"model.forget_bias": 2.0}, ["model.forget_bias", "lstm", "'rnn'"]),
    ({"data.classes": 3}, ["data.classes", "spirals"]),
    ({"data.task": "spirals"}, ["data.task", "adding, copy, sine"]),
    ({"data.seq_len": 1}, ["data.seq_len", ">= 2"]),
    ({"data.seq_len": 0}, ["data.seq_len", ">= 2"]),
    ({"model.activation": "elu"}, ["model.activation", "tanh, relu, sigmoid"]),
    ({"model.kind": "lstm", "model.activation": "relu"}, ["model.activation", "lstm", "tanh"]),
    ({"model.kind": "gru", "model.activation": "sigmoid"}, ["model.activation", "gru", "tanh"]),
    ({"model.recurrent_init": "he"}, ["model.recurrent_init", "orthogonal, identity, xavier, normal"]),
    ({"model.recurrent_gain": 0.0}, ["model.recurrent_gain", "> 0"]),
], ids=["batchnorm", "residual", "bias_init", "forget_bias-on-rnn", "classes", "2d-task", "seq_len-1", "seq_len-0",
        "rnn-elu", "lstm-relu", "gru-sigmoid", "recurrent_init", "recurrent_gain"])
def test_mlp_keys_and_bad_values_on_a_recurrent_net(overrides, words):
    with pytest.raises(ConfigError) as err:
        gradtui.load_config("vanishing-sigmoid").with_overrides({**RNN, **overrides})
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("kind,activation", [("rnn", "tanh"), ("rnn", "relu"), ("rnn", "sigmoid"), ("lstm", "tanh"), ("gru", "tanh")])
def test_allowed_combinations_build(kind, activation):
    cfg = gradtui.load_config("vanishing-sigmoid").with_overrides(
        {**RNN, "model.kind": kind, "model.activation": activation, "data.seq_len": 2, "model.depth": 1,
         "model.width": 4, "data.samples": 32, "train.batch_size": 4})
    rec = gradtui.Experiment(cfg).step()
    assert rec.time_delta_norm.shape == (2,)
