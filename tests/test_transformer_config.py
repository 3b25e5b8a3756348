"""Transformer config: bad input gives one clear ConfigError; tasks; statistics rows and keys."""

import numpy as np
import pytest

import gradtui
from gradtui.config import ConfigError
from gradtui.tasks.tokens import associative_recall, reverse_digits, sort_digits

BASE = {"model.kind": "transformer", "model.activation": "relu", "model.depth": 2, "model.width": 16,
        "model.heads": 4, "model.residual": True, "model.norm": "pre", "data.task": "sort", "data.seq_len": 8, "model.max_len": 16, "data.samples": 256,
        "train.batch_size": 16}


def cfg(**extra):
    return gradtui.load_config("vanishing-sigmoid").with_overrides({**BASE, **extra})


@pytest.mark.parametrize("extra,words", [
    ({"model.width": 18, "model.heads": 4}, ["model.width = 18", "not divisible by model.heads = 4", "1, 2, 3, 6, 9, 18"]),
    ({"data.seq_len": 40}, ["data.seq_len = 40", "model.max_len = 16", "at least 40"]),
    ({"model.activation": "tanh"}, ["model.activation = 'tanh'", "relu, gelu"]),
    ({"model.norm": "middle"}, ["model.norm", "post, pre, none"]),
    ({"model.batchnorm": True}, ["model.batchnorm applies only to model.kind mlp"]),
    ({"data.task": "recall", "data.seq_len": 2}, ["data.seq_len = 2", "recall", "at least 3"]),
])
def test_bad_transformer_input_is_a_clear_config_error(extra, words):
    with pytest.raises(ConfigError) as err:
        cfg(**extra)
    for word in words:
        assert word in str(err.value)


def test_a_transformer_needs_a_token_task():
    from gradtui.config import build_config

    with pytest.raises(ConfigError, match="data.task = 'spirals' is not allowed for model.kind 'transformer': expected one of sort, reverse, recall"):
        build_config({"model": {"kind": "transformer", "activation": "relu"}, "data": {"task": "spirals"}})


def test_token_tasks_are_refused_for_other_kinds_and_gelu_for_mlps():
    base = gradtui.load_config("vanishing-sigmoid")
    with pytest.raises(ConfigError, match="need model.kind 'transformer'"):
        base.with_overrides({"data.task": "sort"})
    with pytest.raises(ConfigError, match="gelu is for Transformer MLPs only"):
        base.with_overrides({"model.activation": "gelu"})


def test_the_command_line_reports_a_bad_head_count_with_exit_code_2(capsys):
    from gradtui.cli import main

    code = main(["run", "vanishing-sigmoid", "--steps", "1",
                 *[f"--set={k}={v}" for k, v in {**BASE, "model.heads": 3}.items()]])
    out = capsys.readouterr()
    assert code == 2
    assert "not divisible by model.heads = 3" in out.err + out.out
    assert "Traceback" not in out.err


def test_tasks_have_the_answers_they_claim():
    rng = np.random.default_rng(0)
    x, y = sort_digits(50, 9, rng)
    assert np.all(np.diff(y, axis=1) >= 0) and np.all(np.sort(x, axis=1) == y)
    x, y = reverse_digits(50, 9, rng)
    assert np.all(y == x[:, ::-1])
    x, y = associative_recall(50, 10, rng)
    assert np.all(y[:, :-1] == -1)
    for row, target in zip(x, y[:, -1]):
        keys, values = row[0:8:2], row[1:8:2]
        assert len(set(keys)) == 4 and row[8] == 10 + 26  # distinct keys, one filler
        assert target == values[list(keys).index(row[-1])]


def test_statistics_have_one_row_per_sub_layer_and_per_block_collapse_figures():
    exp = gradtui.Experiment(cfg())
    assert exp.layer_names == ["embed", "block.0.attn", "block.0.mlp", "block.1.attn", "block.1.mlp", "head"]
    rec = exp.step()
    for name in ("grad_norm", "delta_norm", "weight_norm", "update_ratio", "act_mean", "act_std", "dead_fraction"):
        values = getattr(rec, name)
        assert values.shape == (6,) and np.all(np.isfinite(values)), name
    assert np.all(rec.grad_norm > 0) and np.all(rec.delta_norm > 0) and np.all(rec.update_ratio > 0)
    assert rec.dead_fraction[[1, 3]].tolist() == [0.0, 0.0]  # attention rows have no activation
    assert rec.token_spread.shape == (2,) and np.all((rec.token_spread > 0) & (rec.token_spread < 1))
    T = cfg().data.seq_len
    assert rec.attention_entropy.shape == (2,) and np.all((rec.attention_entropy > 0) & (rec.attention_entropy <= np.log(T) + 1e-6))
    d = rec.to_dict()
    assert len(d["token_spread"]) == 2 and len(d["attention_entropy"]) == 2


def test_delta_norm_is_the_gradient_reaching_each_sub_layer_output():
    """delta_norm of embed equals ||dL/dX_0||, which the embedding gradient shows directly: every
    token of a batch whose sequences all hold the same single token puts its whole dL/dX_0 into one row of E."""
    exp = gradtui.Experiment(cfg(**{"train.dtype": "float64"}))
    x, y = exp.batch()
    x = np.zeros_like(x)  # every token 0, so dL/dE[0] = sum over positions of dL/dX_0 and dL/dP[t] = sum over the batch
    stats = {k: np.zeros(6) for k in ("act_mean", "act_std", "dead_fraction", "saturation", "delta_norm")}
    stats.update(exp.network.extra_stats())
    grad = np.zeros_like(exp.theta)
    exp.network.loss_and_grad(exp.theta, grad, x, y, True, stats)
    g = exp.layout.to_dict(grad)
    ws = exp.network.workspace(len(x))
    dx0 = ws.DX  # after the backward: dL/dX_0
    assert stats["delta_norm"][0] == pytest.approx(np.linalg.norm(dx0), rel=1e-12)
    np.testing.assert_allclose(g["embed.E"][0], dx0.sum(axis=0), rtol=1e-10, atol=1e-14)


def test_layer_norm_key_cycles_and_carries_the_weights():
    from gradtui.ui.keys import change_for

    c = cfg(**{"model.norm": "post"})
    assert change_for("l", c) == {"model.norm": "pre"}
    assert change_for("l", c.with_overrides({"model.norm": "none"})) == {"model.norm": "post"}
    assert change_for("w", c) == {"train.warmup_steps": 200}
    assert change_for("r", c) == {"model.residual": False}
    assert change_for("a", c) == {"model.activation": "gelu"}
    assert change_for("b", c) == {}
    exp = gradtui.Experiment(c)
    exp.run(3)
    before = exp.params()
    exp.reconfigure(c.with_overrides(change_for("l", c)))
    after = exp.params()
    assert exp.cfg.model.norm == "pre" and all(np.array_equal(before[k], after[k]) for k in before)


def test_help_entries_cite_the_two_papers():
    from gradtui.ui.keys import BY_LABEL

    assert "Xiong et al. 2020" in BY_LABEL["l"].helps
    assert "Dong, Cordonnier & Loukas 2021" in BY_LABEL["r"].helps


@pytest.mark.parametrize("task", ["reverse", "recall"])
def test_held_out_accuracy_per_position(task):
    """Per position, the share of held-out sequences answered right; recall scores only the last
    position (the others are NaN), and the positions weighted by their counts give evaluate()'s accuracy."""
    exp = gradtui.Experiment(cfg(**{"data.task": task}))
    exp.run(5)
    loss, per_position = exp.network.evaluate_positions(exp.theta, exp.data.x_test, exp.data.y_test)
    assert per_position.shape == (8,)
    if task == "recall":
        assert np.all(np.isnan(per_position[:-1])) and 0 <= per_position[-1] <= 1
    else:
        assert np.all((per_position >= 0) & (per_position <= 1))
    x, y = exp.data.x_test, exp.data.y_test  # independently: argmax of the training path's logits
    exp.gradients(x, y)
    logits = exp.network.workspace(len(x)).LOGITS.reshape(len(x), 8, -1)
    right = (logits.argmax(axis=2) == y).astype(float)
    counted = y >= 0
    with np.errstate(invalid="ignore"):
        by_hand = np.where(counted.any(axis=0), (right * counted).sum(axis=0) / counted.sum(axis=0), np.nan)
    np.testing.assert_allclose(per_position, by_hand, rtol=1e-12)
    scored = (exp.data.y_test >= 0).sum(axis=0)
    ok = ~np.isnan(per_position)
    expected = np.sum(per_position[ok] * scored[ok]) / scored[ok].sum()
    assert exp.evaluate()["accuracy"] == pytest.approx(expected)
    assert exp.evaluate()["loss"] == pytest.approx(loss)
