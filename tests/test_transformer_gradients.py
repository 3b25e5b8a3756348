"""The Transformer's loss and every gradient against PyTorch (float64) and finite differences."""

import numpy as np
import pytest

import gradtui
from tests.gradcheck import numeric_gradient, relative_error

torch = pytest.importorskip("torch")
from transformer_oracle import torch_loss_and_grads  # noqa: E402


def small_transformer(norm="pre", residual=True, activation="relu", depth=2, task="sort", causal=False, **extra):
    overrides = {
        "model.kind": "transformer", "model.depth": depth, "model.width": 8, "model.heads": 2, "model.mlp_ratio": 2,
        "model.activation": activation, "model.norm": norm, "model.residual": residual, "model.causal": causal,
        "model.max_len": 8, "model.init": "xavier", "model.bias_std": 0.2,
        "data.task": task, "data.seq_len": 5, "data.samples": 64, "train.dtype": "float64", "train.batch_size": 3,
        **extra,
    }
    return gradtui.Experiment(gradtui.load_config("vanishing-sigmoid").with_overrides(overrides))


def perturb_layernorms(exp, seed=1):
    """LayerNorm gains and biases away from 1 and 0, so their gradients are tested at general values."""
    rng = np.random.default_rng(seed)
    exp.set_params({k: v + rng.normal(0, 0.3, v.shape) for k, v in exp.params().items() if ".ln_" in k})


ORACLE_CASES = [(n, r) for n in ("post", "pre", "none") for r in (True, False)]


@pytest.mark.parametrize("norm,residual", ORACLE_CASES)
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_loss_and_every_gradient_equal_pytorch(norm, residual, activation):
    exp = small_transformer(norm, residual, activation)
    perturb_layernorms(exp)
    x, y = exp.batch()
    loss, grads = exp.gradients(x, y)
    m = exp.cfg.model
    ref_loss, ref = torch_loss_and_grads(
        exp.params(), x.astype(np.int64), y, depth=m.depth, width=m.width, heads=m.heads,
        hidden=m.mlp_ratio * m.width, activation=activation, norm=norm, residual=residual)
    assert abs(loss - ref_loss) <= 1e-6
    assert set(ref) == set(grads)
    for name, g in grads.items():
        expected = ref[name]
        np.testing.assert_allclose(g, expected, rtol=0, atol=1e-6 * max(1.0, np.abs(expected).max()), err_msg=name)


def test_causal_mask_equals_pytorch_and_hides_the_future():
    exp = small_transformer("post", True, "gelu", causal=True, task="recall")
    x, y = exp.batch()
    m = exp.cfg.model
    loss, grads = exp.gradients(x, y)
    ref_loss, ref = torch_loss_and_grads(exp.params(), x.astype(np.int64), y, depth=m.depth, width=m.width,
                                         heads=m.heads, hidden=m.mlp_ratio * m.width, activation="gelu",
                                         norm="post", residual=True, causal=True)
    assert abs(loss - ref_loss) <= 1e-6
    for name, g in grads.items():
        np.testing.assert_allclose(g, ref[name], rtol=0, atol=1e-6 * max(1.0, np.abs(ref[name]).max()), err_msg=name)
    # recall scores only the last position; under the causal mask it sees every token, so the
    # first token's embedding still gets a gradient, but no position's logits depend on later tokens
    net = exp.network
    ws = net.workspace(len(x))
    changed = x.copy()
    changed[:, -1] = (changed[:, -1] + 1) % net.n_in
    exp.gradients(x, y)
    before = ws.LOGITS.reshape(len(x), -1, net.n_out)[:, :-1].copy()
    exp.gradients(changed, y)
    after = ws.LOGITS.reshape(len(x), -1, net.n_out)[:, :-1]
    np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("norm,residual", [("post", True), ("pre", True), ("none", False)])
def test_every_parameter_kind_matches_finite_differences(norm, residual):
    exp = small_transformer(norm, residual, "gelu", depth=2)
    perturb_layernorms(exp)
    x, y = exp.batch()
    kinds = set()
    for name in exp.params():
        if norm != "pre" and name.startswith("head.ln_"):
            continue  # unused without Pre-LN: zero gradient, checked against PyTorch above
        if norm == "none" and ".ln_" in name:
            continue
        analytic, numeric = numeric_gradient(exp, x, y, name, max_entries=12)
        assert relative_error(analytic, numeric) < 1e-6, name
        kinds.add(name.rsplit(".", 1)[1])
    expected = {"E", "P", "W_qkv", "b_qkv", "W_o", "b_o", "W_1", "b_1", "W_2", "b_2", "W", "b"}
    if norm != "none":
        expected |= {"ln_g", "ln_b"}
    assert kinds == expected
