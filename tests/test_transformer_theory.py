"""Theory at initialisation: Xiong et al. 2020's depth scaling of Post-LN vs Pre-LN gradients, and
Dong et al. 2021's rank collapse without residual connections."""

import numpy as np
import pytest

import gradtui

SEEDS = range(8)


def transformer_cfg(norm, depth, seed=0, residual=True, width=64):
    return gradtui.load_config("vanishing-sigmoid").with_overrides({
        "model.kind": "transformer", "model.depth": depth, "model.width": width, "model.heads": 4, "model.mlp_ratio": 4,
        "model.activation": "relu", "model.norm": norm, "model.residual": residual, "model.max_len": 16,
        "model.init": "xavier", "data.task": "sort", "data.seq_len": 16, "data.samples": 256,
        "train.batch_size": 32, "train.dtype": "float64", "train.seed": seed})


def last_mlp_gradient(norm, depth, seed):
    """||dL/dW_1, dL/dW_2|| of the last block's MLP at initialisation, on one batch."""
    exp = gradtui.Experiment(transformer_cfg(norm, depth, seed))
    _, g = exp.gradients(*exp.batch())
    last = f"block.{depth - 1}.mlp"
    return float(np.sqrt(np.sum(g[f"{last}.W_1"] ** 2) + np.sum(g[f"{last}.W_2"] ** 2)))


def test_post_ln_over_pre_ln_gradient_grows_like_sqrt_depth():
    """Xiong et al. 2020: Post-LN's gradient at the last block does not shrink with depth, Pre-LN's
    falls like 1/sqrt(L), so their ratio grows like sqrt(L): 2x from depth 6 to depth 24.

    Tolerance: the ratio of one seed scatters by about +-40% (measured, 8 seeds: 2.2-3.6 at depth 6,
    2.7-7.7 at depth 24), so the geometric mean over 8 seeds is known to about +-15% and the growth
    from 6 to 24 to about +-20%; we accept a growth exponent between 0.25 and 0.75 (a growth of
    1.41x to 2.83x, measured 1.85x), which excludes both "no growth" (Pre-LN scaling like Post-LN)
    and linear growth (4x). The ratio must also exceed 1 at every depth and not fall with depth."""
    geo = {}
    for depth in (6, 12, 24):
        ratios = [last_mlp_gradient("post", depth, s) / last_mlp_gradient("pre", depth, s) for s in SEEDS]
        geo[depth] = float(np.exp(np.mean(np.log(ratios))))
    assert all(r > 1.0 for r in geo.values()), geo
    assert geo[12] > 0.9 * geo[6] and geo[24] > 0.9 * geo[12], geo
    exponent = np.log(geo[24] / geo[6]) / np.log(4.0)
    assert 0.25 <= exponent <= 0.75, (geo, exponent)


def spread_at_init(depth, residual, seed=0):
    exp = gradtui.Experiment(transformer_cfg("pre", depth, seed, residual=residual, width=32).with_overrides({"train.dtype": "float32"}))
    return exp.step().token_spread


@pytest.mark.parametrize("seed", [0, 1])
def test_rank_collapse_without_residuals_and_not_with_them(seed):
    """Dong, Cordonnier & Loukas 2021: pure attention layers drive the tokens to one vector doubly
    exponentially with depth. In a Pre-LN net without residuals the token spread falls block after
    block (0.38, 0.016, 3e-6 over the first three, measured) and stays at float32's floor (~1e-7);
    with residuals it stays near its value at the embedding (0.91 -> 0.73 over 12 blocks, measured):
    we require above 0.5."""
    plain = spread_at_init(12, residual=False, seed=seed)
    skip = spread_at_init(12, residual=True, seed=seed)
    assert plain[-1] < 0.1 * plain[0] and plain[-1] < 1e-2, plain
    assert np.all(np.diff(np.log(plain[:3])) < np.log(0.5)), plain  # more than halves at each of the first blocks
    assert np.all(skip > 0.5), skip
