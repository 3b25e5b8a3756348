"""Bad input gives a ConfigError naming the key, the value, what is allowed and the closest name."""

import pytest

import gradtui
from gradtui.config import parse_assignments


def base():
    return gradtui.load_config("vanishing-sigmoid")


@pytest.mark.parametrize("overrides,message", [
    ({"model.dpth": 3}, "unknown key model.dpth; did you mean model.depth?"),
    ({"modle.depth": 3}, "unknown key modle.depth; did you mean model.depth?"),
    ({"model.depth": 0}, "model.depth = 0 is not allowed: expected an integer >= 1"),
    ({"model.width": 0}, "model.width = 0 is not allowed"),
    ({"train.lr": 0.0}, "train.lr = 0.0 is not allowed: expected a number > 0"),
    ({"train.lr": -1}, "train.lr = -1 is not allowed"),
    ({"model.depth": 2.5}, "expected an integer"),
    ({"model.depth": True}, "expected an integer"),
    ({"model.batchnorm": "yes"}, "expected true or false"),
    ({"model.activation": "sigmod"}, "did you mean sigmoid?"),
    ({"train.optimizer": "adamw"}, "expected one of sgd, momentum, adam, rmsprop"),
    ({"train.batch_size": 5000}, "train.batch_size = 5000 is larger than the 1638 training examples"),
    ({"model.recurrent_gain": 2.0}, "model.recurrent_gain applies only to model.kind rnn / lstm / gru"),
    ({"data.task": "adding"}, "data.task = 'adding' is not allowed for model.kind 'mlp'"),
    ({"train.lr": float("nan")}, "train.lr = nan is not allowed"),
])
def test_bad_values_are_named(overrides, message):
    with pytest.raises(gradtui.ConfigError) as err:
        base().with_overrides(overrides)
    assert message in str(err.value)


def test_unknown_preset_suggests_the_closest():
    with pytest.raises(gradtui.ConfigError, match="did you mean vanishing-sigmoid"):
        gradtui.load_config("vanishing-sigmod")


def test_toml_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\ndepth = 3\nwidth = \n")
    with pytest.raises(gradtui.ConfigError, match=r"malformed TOML.*line 3"):
        gradtui.load_config(bad)
    typo = tmp_path / "typo.toml"
    typo.write_text("[model]\ndepht = 3\n")
    with pytest.raises(gradtui.ConfigError, match="did you mean model.depth"):
        gradtui.load_config(typo)
    table = tmp_path / "table.toml"
    table.write_text("[modle]\ndepth = 3\n")
    with pytest.raises(gradtui.ConfigError, match="did you mean model"):
        gradtui.load_config(table)
    with pytest.raises(gradtui.ConfigError, match="no preset file"):
        gradtui.load_config(tmp_path / "missing.toml")


def test_partial_preset_takes_defaults(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('description = "mine"\n[model]\ndepth = 7\n')
    cfg = gradtui.load_config(mine)
    assert cfg.model.depth == 7 and cfg.model.width == 64 and cfg.name == "mine"
    assert cfg.explicit == {"model.depth"}


def test_overrides_are_typed_and_immutable():
    cfg = base()
    deeper = cfg.with_overrides(parse_assignments(["model.depth=30", "model.batchnorm=true", "train.lr=1e-3"]))
    assert (deeper.model.depth, deeper.model.batchnorm, deeper.train.lr) == (30, True, 1e-3)
    assert cfg.model.depth == 20
    with pytest.raises(gradtui.ConfigError, match="KEY=VALUE"):
        parse_assignments(["model.depth"])
    with pytest.raises(gradtui.ConfigError, match="did you mean model.depth"):
        parse_assignments(["model.deth=3"])


def test_switching_task_drops_keys_that_no_longer_apply():
    cfg = base().with_overrides({"data.task": "teacher"})
    assert cfg.data.task == "teacher" and "data.classes" not in cfg.explicit
