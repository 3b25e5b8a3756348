"""The Transformer presets' promises, pressed through the interface's change path (see
tests/test_preset_promises.py, whose Run drives them)."""

from __future__ import annotations

import numpy as np
import pytest

from gradtui.config import load_config
from gradtui.ui.keys import remedy_keys
from test_preset_promises import Run, loss_fell

CHANCE = float(np.log(10))  # every scored position answered by chance
# Steps after the start or the rescue: each preset's loss is below half of chance by step 40-60
# (measured: 1.09 at steps 30-40 for deep-preln, 0.95 at 50-60 after w, 0.83 at 40-50 after l,
# 1.05 at 40-50 after r), so the mean of the last 30 of 120 steps sits about 2x below each bound.
STEPS = 120


def test_deep_pre_ln_trains_without_warmup_and_without_alerts():
    run = Run(load_config("transformer-deep-preln"))
    run.run(STEPS)
    assert not [k for _, k in run.raised if k in ("vanishing", "exploding", "nonfinite", "collapse")], run.raised
    assert run.nonfinite_steps == 0
    assert float(np.mean(run.losses[-30:])) < 0.5 * CHANCE, run.losses[-30:]
    assert loss_fell(run.losses, factor=0.5)


def test_rank_collapse_raises_collapse_and_r_rescues_it():
    run = Run(load_config("transformer-rank-collapse"))
    run.until_raised("collapse", 30)
    spread = run.exp.step().token_spread
    assert spread[0] > 0.05 and spread[-1] < 1e-4, spread  # falls with depth
    assert run.press("r") == {"model.residual": True}
    run.run(STEPS)
    assert "collapse" not in run.active_kinds() and not run.raised, run.raised
    assert float(np.mean(run.losses[-30:])) < 0.5 * CHANCE
    assert loss_fell(run.losses, factor=0.5)


@pytest.mark.parametrize("key,change", [("w", {"train.warmup_steps": 200}), ("l", {"model.norm": "pre"})])
def test_post_ln_without_warmup_stalls_names_the_cause_and_w_or_l_rescues_it(key, change):
    run = Run(load_config("transformer-postln-warmup"))
    run.until_raised("vanishing", 60)
    alert = next(a for a in run.diag.active() if a.kind == "vanishing")
    assert "Post-LN without warmup" in alert.message and "Xiong" in alert.message
    assert [dict(r.change) for r in alert.remedies][:2] == [{"train.warmup_steps": 200}, {"model.norm": "pre"}]
    assert remedy_keys(alert.remedies)[:2] == ("w", "l")
    assert abs(float(np.mean(run.losses[-10:])) - CHANCE) < 0.1  # stuck at chance
    assert run.press(key) == change
    run.run(STEPS)
    assert run.nonfinite_steps == 0
    assert float(np.mean(run.losses[-30:])) < 0.6 * CHANCE, run.losses[-30:]
    assert "vanishing" not in run.active_kinds()
