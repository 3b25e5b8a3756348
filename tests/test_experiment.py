"""The Experiment API: determinism, number types, statistics, non-finite steps, carry-over."""

import subprocess
import sys

import numpy as np
import pytest

import gradtui
from gradtui.engine.reference.numpy_mlp import NumpyMLP


def config(**overrides):
    base = {"model.depth": 4, "model.width": 16, "data.samples": 256, "train.batch_size": 32}
    base.update(overrides)
    return gradtui.load_config("vanishing-sigmoid").with_overrides(base)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_config_same_numbers(dtype):
    cfg = config(**{"train.dtype": dtype, "train.optimizer": "adam", "model.batchnorm": True, "train.lr": 0.01})
    a, b = gradtui.Experiment(cfg), gradtui.Experiment(cfg)
    for _ in range(15):
        ra, rb = a.step().to_dict(), b.step().to_dict()
        assert ra == rb
    assert a.evaluate() == b.evaluate()


def test_float32_and_float64_agree_and_keep_their_type():
    e32 = gradtui.Experiment(config(**{"train.dtype": "float32", "model.activation": "tanh"}))
    e64 = gradtui.Experiment(config(**{"train.dtype": "float64", "model.activation": "tanh"}))
    assert all(v.dtype == np.float32 for v in e32.params().values())
    assert all(v.dtype == np.float64 for v in e64.params().values())
    for _ in range(5):
        r32, r64 = e32.step(), e64.step()
    assert r32.loss == pytest.approx(r64.loss, rel=1e-4)
    np.testing.assert_allclose(r32.grad_norm, r64.grad_norm, rtol=1e-3)


def test_api_names_and_shapes():
    exp = gradtui.Experiment(config(**{"model.batchnorm": True, "model.activation": "prelu"}))
    assert exp.layer_names == ["hidden.0", "hidden.1", "hidden.2", "hidden.3", "output"]
    params = exp.params()
    assert {"hidden.0.W", "hidden.0.b", "hidden.0.gamma", "hidden.0.beta", "hidden.0.alpha", "output.W", "output.b"} <= set(params)
    assert params["hidden.0.W"].shape == (2, 16) and params["output.W"].shape == (16, 3)
    x, y = exp.batch()
    assert x.shape == (32, 2) and y.dtype.kind == "i"
    rec = exp.step()
    for name in ("grad_norm", "delta_norm", "weight_norm", "update_ratio", "act_mean", "act_std", "dead_fraction", "saturation"):
        assert getattr(rec, name).shape == (5,)
    assert rec.time_delta_norm is None
    d = rec.to_dict()
    assert d["step"] == 1 and isinstance(d["grad_norm"][0], float)
    ev = exp.evaluate()
    assert set(ev) == {"loss", "accuracy"} and 0.0 <= ev["accuracy"] <= 1.0
    params["hidden.0.W"][:] = 0.5
    exp.set_params({"hidden.0.W": params["hidden.0.W"]})
    assert np.all(exp.params()["hidden.0.W"] == 0.5)
    with pytest.raises(KeyError, match="no parameter"):
        exp.set_params({"hidden.9.W": np.zeros(1)})
    with pytest.raises(ValueError, match="shape"):
        exp.set_params({"hidden.0.W": np.zeros((3, 3))})


def test_regression_targets():
    exp = gradtui.Experiment(config(**{"data.task": "teacher", "data.outputs": 2}))
    x, y = exp.batch()
    assert x.shape == (32, 8) and y.shape == (32, 2) and y.dtype == np.float32
    assert "accuracy" not in exp.evaluate()


@pytest.mark.parametrize("activation,batchnorm,task", [
    ("sigmoid", False, "spirals"), ("tanh", True, "spirals"), ("relu", False, "teacher"),
    ("elu", True, "teacher"), ("leaky_relu", False, "spirals"),
])
def test_statistics_match_plain_numpy(activation, batchnorm, task):
    """Every per-layer statistic equals gradtui.engine.reference.numpy_mlp's independent computation."""
    cfg = config(**{"model.activation": activation, "model.batchnorm": batchnorm, "data.task": task,
                    "train.dtype": "float64", "model.init": "he", "model.bias_std": 0.5, "train.lr": 0.05})
    exp = gradtui.Experiment(cfg)
    data = exp.data
    ref = NumpyMLP(4, 16, data.n_in, data.n_out, activation, batchnorm=batchnorm,
                   classification=data.classification, dtype=np.float64)
    for name, value in exp.params().items():
        ref.params[name][...] = value
    x, y = exp.batch()
    expected = ref.step(x, y, 0.05)
    rec = exp.step()
    assert rec.loss == pytest.approx(expected["loss"], rel=1e-10)
    assert rec.grad_norm_total == pytest.approx(expected["grad_norm_total"], rel=1e-9)
    for name in ("grad_norm", "delta_norm", "weight_norm", "update_ratio", "act_mean", "act_std", "dead_fraction", "saturation"):
        np.testing.assert_allclose(getattr(rec, name), expected[name], rtol=1e-7, atol=1e-12, err_msg=name)
    for name, value in exp.params().items():
        np.testing.assert_allclose(value, ref.params[name], rtol=1e-10, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("weight_scale", [1e-6, 1e6])
def test_float32_statistics_survive_tiny_and_huge_values(weight_scale):
    """float32 kernels sum squares per row in float32 and redo a row in float64 when its sum
    leaves [1e-20, 1e30]. With weights this small the deepest activations and the first
    layers' errors are ~1e-20 and below (their float32 squares underflow); this large, the
    activations reach ~1e19 and beyond (their squares overflow). The statistics must still
    match a float64 NumPy computation on the same float32 weights (rtol 1e-5: float32 forward)."""
    cfg = config(**{"train.dtype": "float32", "model.activation": "linear", "model.init": "lecun", "train.lr": 1e-30})
    exp = gradtui.Experiment(cfg)
    exp.set_params({k: v * np.float32(weight_scale) for k, v in exp.params().items() if k.endswith(".W")})
    data = exp.data
    ref = NumpyMLP(4, 16, data.n_in, data.n_out, "linear", classification=data.classification, dtype=np.float64)
    for name, value in exp.params().items():
        ref.params[name][...] = value
    x, y = exp.batch()
    expected = ref.step(x.astype(np.float64), y, 1e-30)
    rec = exp.step()
    assert not rec.nonfinite
    extreme = np.concatenate([expected["act_std"], expected["delta_norm"]])
    assert extreme.min() < 1e-19 or extreme.max() > 1e19  # the case the fallback exists for
    for name in ("act_mean", "act_std", "delta_norm", "grad_norm"):
        np.testing.assert_allclose(getattr(rec, name), expected[name], rtol=1e-5, err_msg=name)


def test_dead_and_saturated_units_are_counted():
    dead = gradtui.Experiment(config(**{"model.activation": "relu", "model.bias_init": -50.0, "model.init": "he"}))
    assert np.all(dead.step().dead_fraction[:-1] == 1.0)
    saturated = gradtui.Experiment(config(**{"model.activation": "tanh", "model.init": "normal", "model.init_std": 5.0}))
    assert np.all(saturated.step().saturation[1:-1] > 0.5)


def test_nonfinite_step_leaves_the_model_untouched():
    cfg = config(**{"model.activation": "relu", "model.init": "normal", "model.init_std": 30.0,
                    "model.depth": 12, "train.lr": 10.0})
    exp = gradtui.Experiment(cfg)
    for _ in range(200):
        before = exp.params()
        rec = exp.step()
        if rec.nonfinite:
            break
    else:
        pytest.fail("the exploding configuration never went non-finite")
    after = exp.params()
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])
        assert np.all(np.isfinite(after[name]))
    assert rec.nonfinite_layer in exp.layer_names + ["loss"]
    assert np.all(rec.update_ratio == 0.0)
    d = rec.to_dict()
    assert d["nonfinite"] is True and d["nonfinite_layer"] == rec.nonfinite_layer


def test_activation_swap_keeps_weights_bit_for_bit():
    cfg = config(**{"train.optimizer": "adam", "train.lr": 0.01})
    exp = gradtui.Experiment(cfg)
    for _ in range(3):
        exp.step()
    before = exp.params()
    exp.reconfigure(cfg.with_overrides({"model.activation": "prelu", "model.batchnorm": True}))
    after = exp.params()
    for name, value in before.items():
        np.testing.assert_array_equal(value, after[name])
    assert np.all(after["hidden.0.gamma"] == 1.0) and np.all(after["hidden.0.beta"] == 0.0)
    assert np.all(after["hidden.0.alpha"] == np.float32(0.25))
    assert exp.step().step == 4
    with pytest.raises(gradtui.ConfigError, match="restart"):
        exp.reconfigure(cfg.with_overrides({"model.init": "he"}))


def test_engine_does_not_import_textual():
    code = "import sys, gradtui, gradtui.engine, gradtui.config, gradtui.tasks; " \
           "gradtui.Experiment(gradtui.load_config('vanishing-sigmoid').with_overrides({'model.depth': 2})).step(); " \
           "assert 'textual' not in sys.modules, 'textual imported'; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_saved_state_restores_training_exactly():
    cfg = config(**{"train.optimizer": "adam", "train.lr": 0.01, "model.batchnorm": True})
    exp = gradtui.Experiment(cfg)
    for _ in range(3):
        exp.step()
    saved = exp.save_state()
    x, y = exp.batch()
    first = exp.step().to_dict()
    exp.step()
    exp.load_state(saved)
    assert exp.step_count == 5 and saved["step"] == 3  # numbering keeps going forward
    exp._cursor -= 2 * cfg.train.batch_size  # replay the same batch
    assert np.array_equal(exp.batch()[0], x)
    again = exp.step().to_dict()
    assert again["step"] == 6
    assert {**again, "step": 4} == first
    with pytest.raises(ValueError, match="another config"):
        exp.reconfigure(cfg.with_overrides({"train.lr": 0.02}))
        exp.load_state(saved)


@pytest.mark.parametrize("overrides", [
    {"train.optimizer": "adam", "train.lr": 0.01, "model.batchnorm": True},
    {"data.task": "teacher", "train.optimizer": "momentum", "train.clip": "value", "train.clip_threshold": 0.01},
])
def test_run_k_steps_equals_k_single_steps(overrides):
    """Several steps per kernel call give exactly the records of one step per call."""
    cfg = config(**overrides)
    one_by_one, chunked = gradtui.Experiment(cfg), gradtui.Experiment(cfg)
    singles = [one_by_one.step().to_dict() for _ in range(23)]
    chunks = [r.to_dict() for k in (1, 7, 15) for r in chunked.run(k)]
    assert singles == chunks
    for name, value in one_by_one.params().items():
        np.testing.assert_array_equal(value, chunked.params()[name])
    assert one_by_one.evaluate() == chunked.evaluate()


def test_run_stops_at_a_nonfinite_step_and_keeps_the_batch_order():
    cfg = config(**{"data.task": "teacher", "model.activation": "relu", "model.batchnorm": True, "train.lr": 1000.0})
    chunked, single = gradtui.Experiment(cfg), gradtui.Experiment(cfg)
    records = chunked.run(200)
    assert records[-1].nonfinite and not any(r.nonfinite for r in records[:-1])
    for _ in records:
        single.step()
    assert np.array_equal(chunked.batch()[0], single.batch()[0])  # the order continues right after it
    assert np.all(np.isfinite(chunked.network.running_mean)) and np.all(np.isfinite(chunked.network.running_var))
    np.testing.assert_array_equal(chunked.network.running_mean, single.network.running_mean)
