"""float32 runs flush subnormal numbers to zero, and only inside the engine's calls."""

import numpy as np
import pytest

import gradtui
from gradtui.engine.subnormals import SUPPORTED, flushed, read_mxcsr

pytestmark = pytest.mark.skipif(not SUPPORTED, reason="the flush is set on x86 processors only")

TINY = np.float32(1e-39)  # subnormal in float32 (below 1.2e-38)


def controls():
    """MXCSR without its six sticky exception flags, which any arithmetic may set."""
    return read_mxcsr() & ~0x3F


def test_float32_blocks_flush_subnormals_and_restore_the_register():
    before = controls()
    assert np.float32(1) * TINY == TINY
    with flushed(np.float32):
        assert np.array([TINY]) * np.float32(1) == 0.0
    assert controls() == before
    assert np.float32(1) * TINY == TINY


def test_float64_blocks_keep_subnormals_and_errors_restore_the_register():
    before = controls()
    with flushed(np.float64):
        assert np.array([TINY]) * np.float32(1) == TINY
    with pytest.raises(RuntimeError), flushed(np.float32):
        raise RuntimeError("inside")
    assert controls() == before


def test_experiment_calls_leave_the_thread_as_they_found_it():
    exp = gradtui.Experiment(gradtui.load_config("vanishing-sigmoid").with_overrides({"model.depth": 4, "model.width": 8}))
    before = controls()
    exp.run(3)
    exp.evaluate()
    exp.gradients(*exp.batch())
    assert controls() == before
    assert np.float32(1) * TINY == TINY


def test_the_default_preset_reports_the_same_vanishing_profile_in_float32_and_float64():
    """Its deepest errors (~1e-35) are near float32's subnormal range; the flush must not change
    what the interface shows: per-layer gradient norms agree with float64 within 1e-3."""
    cfg = gradtui.load_config("vanishing-sigmoid")
    e32 = gradtui.Experiment(cfg)
    e64 = gradtui.Experiment(cfg.with_overrides({"train.dtype": "float64"}))
    e64.set_params(e32.params())
    r32, r64 = e32.step(), e64.step()
    assert r64.grad_norm[0] < 1e-30
    np.testing.assert_allclose(r32.grad_norm, r64.grad_norm, rtol=1e-3)


def test_the_fused_mlp_loop_flushes_inside_its_own_call():
    """Experiment.step() on the float32 MLP sets no flush around the kernel call: the fused loop
    sets it itself and puts the register back. Weights scaled so that the first layer's
    back-propagated error (~1.5e-40 in float64) is subnormal in float32: flushed, it reads 0."""
    cfg = gradtui.load_config("vanishing-sigmoid").with_overrides(
        {"model.depth": 3, "model.width": 8, "model.activation": "tanh"})
    records = {}
    for dtype in ("float32", "float64"):
        exp = gradtui.Experiment(cfg.with_overrides({"train.dtype": dtype}))
        params = exp.params()
        params["hidden.1.W"] = params["hidden.1.W"] * 1e-14
        params["hidden.2.W"] = params["hidden.2.W"] * 1e-20
        exp.set_params(params)
        before = controls()
        records[dtype] = exp.step()
        assert controls() == before
    assert 1.4e-45 < records["float64"].delta_norm[0] < 1.2e-38  # subnormal in float32
    assert records["float32"].delta_norm[0] == 0.0 and records["float32"].grad_norm[0] == 0.0
    np.testing.assert_allclose(records["float32"].delta_norm[1:], records["float64"].delta_norm[1:], rtol=1e-5)
