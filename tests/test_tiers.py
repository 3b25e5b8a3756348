"""The reference tier (plain NumPy) and the kernel tier compute the same training run, and an
Experiment started on the reference tier swaps to the kernels between two steps without a jump."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import gradtui
from gradtui.engine import tiers
from gradtui.engine.experiment import Experiment
from gradtui.engine.record import OPTIONAL, PER_LAYER

STEPS = 50
# float32 agreement after STEPS steps: the tiers round differently (NumPy's exact tanh and
# pairwise sums against the kernels' rational tanh and fused loops), and training carries
# those last-bit differences forward. Fractions of units (dead, saturated) may differ by
# an element or two at a threshold: 2 / (units x batch x steps) at most.
RTOL, ATOL = 2e-3, 1e-5
FRACTION_ATOL = 1e-3
ACCURACY_ATOL = 0.02

RECURRENT = {"data.seq_len": 10, "data.samples": 256, "train.batch_size": 8, "model.width": 12, "model.depth": 2}


def config(overrides):
    return gradtui.load_config("vanishing-sigmoid").with_overrides(
        {"model.depth": 4, "model.width": 16, "train.batch_size": 16, "data.samples": 512, **overrides})


def assert_runs_agree(cfg, steps=STEPS):
    kernels, reference = Experiment(cfg, tier="kernels"), Experiment(cfg, tier="reference")
    assert (kernels.tier, reference.tier) == ("kernels", "reference")
    for _ in range(steps):
        a, b = kernels.step().to_dict(), reference.step().to_dict()
        assert a.keys() == b.keys()
        for key, va in a.items():
            if isinstance(va, (bool, str)) or va is None:
                assert va == b[key], (a["step"], key)
                continue
            fraction = key in ("dead_fraction", "saturation")
            np.testing.assert_allclose(b[key], va, rtol=RTOL, atol=FRACTION_ATOL if fraction else ATOL,
                                       err_msg=f"step {a['step']}: {key}")
    ea, eb = kernels.evaluate(), reference.evaluate()
    assert ea.keys() == eb.keys()
    assert eb["loss"] == pytest.approx(ea["loss"], rel=RTOL)
    if "accuracy" in ea:  # an example at the decision boundary may fall either way
        assert eb["accuracy"] == pytest.approx(ea["accuracy"], abs=ACCURACY_ATOL)


MLP_CASES = [
    {"model.activation": "tanh", "model.init": "xavier"},
    {"model.activation": "sigmoid", "model.init": "normal"},
    {"model.activation": "relu", "model.init": "he", "train.optimizer": "momentum"},
    {"model.activation": "leaky_relu", "model.init": "he", "train.optimizer": "rmsprop", "train.lr": 0.003},
    {"model.activation": "prelu", "model.init": "he", "train.clip": "norm", "train.clip_threshold": 0.5},
    {"model.activation": "elu", "model.init": "he", "train.clip": "value", "train.clip_threshold": 0.01},
    {"model.batchnorm": True, "train.optimizer": "adam", "train.lr": 0.003},
    {"model.batchnorm": True, "model.residual": True, "model.activation": "linear"},
    {"model.residual": True, "model.activation": "relu", "train.weight_decay": 0.01},
    {"data.task": "teacher", "model.activation": "tanh", "model.init": "xavier"},
]


@pytest.mark.parametrize("overrides", MLP_CASES, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_mlp_tiers_agree(overrides):
    assert_runs_agree(config(overrides))


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("task", ["adding", "copy", "sine"])
def test_recurrent_tiers_agree(kind, task):
    assert_runs_agree(config({**RECURRENT, "model.kind": kind, "data.task": task, "model.activation": "tanh",
                              "train.optimizer": "adam", "train.lr": 0.003, "train.clip": "norm"}))


def test_relu_rnn_tiers_agree():
    assert_runs_agree(config({**RECURRENT, "model.kind": "rnn", "data.task": "adding", "model.activation": "relu",
                              "model.recurrent_init": "identity"}))


LSTM = {**RECURRENT, "model.kind": "lstm", "model.activation": "tanh", "data.task": "adding",
        "train.optimizer": "adam", "train.lr": 0.003}


TRANSFORMER = {"model.kind": "transformer", "model.depth": 2, "model.width": 8, "model.heads": 2, "model.mlp_ratio": 2,
               "model.max_len": 8, "model.init": "xavier", "model.bias_std": 0.2, "data.task": "sort",
               "model.activation": "relu", "data.seq_len": 5, "data.samples": 64, "train.batch_size": 4,
               "train.optimizer": "adam", "train.lr": 0.01}
# every LayerNorm placement with and without residuals; relu/gelu and the causal mask alternate
TRANSFORMER_CASES = [("post", True, "relu", False), ("post", False, "gelu", True), ("pre", True, "gelu", False),
                     ("pre", False, "relu", True), ("none", True, "relu", True), ("none", False, "gelu", False)]


@pytest.mark.parametrize("norm,residual,activation,causal", TRANSFORMER_CASES)
def test_transformer_tiers_agree_in_float64(norm, residual, activation, causal):
    """The same maths in float64, so agreement to rounding: every statistic of 3 Adam steps to 1e-9
    relative (the token spread to 1e-8 absolute: near collapse it is sqrt of a difference of
    nearly equal sums, where the two tiers' summation orders part), every gradient to 1e-12 of its
    largest entry, the parameters to 1e-8 (Adam's step m/sqrt(v) has size lr even where a gradient
    is rounding noise), the held-out loss to 1e-10 and its accuracy exactly."""
    cfg = config({**TRANSFORMER, "model.norm": norm, "model.residual": residual, "model.activation": activation,
                  "model.causal": causal, "train.dtype": "float64"})
    kernels, reference = Experiment(cfg, tier="kernels"), Experiment(cfg, tier="reference")
    for _ in range(3):
        a, b = kernels.step(), reference.step()
    assert b.loss == pytest.approx(a.loss, rel=1e-10)
    for name in PER_LAYER + OPTIONAL:
        if name in ("time_delta_norm", "forget_gate_mean"):
            assert getattr(a, name) is None and getattr(b, name) is None
            continue
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-9,
                                   atol=1e-8 if name == "token_spread" else 1e-12, err_msg=name)
    np.testing.assert_allclose(reference.theta, kernels.theta, rtol=0, atol=1e-8)
    x, y = kernels.batch()
    grads_a, grads_b = kernels.gradients(x, y)[1], reference.gradients(x, y)[1]
    for name, g in grads_a.items():
        np.testing.assert_allclose(grads_b[name], g, rtol=0, atol=1e-12 * max(1.0, np.abs(g).max()), err_msg=name)
    ea, eb = kernels.evaluate(), reference.evaluate()
    assert eb["loss"] == pytest.approx(ea["loss"], rel=1e-10) and eb["accuracy"] == ea["accuracy"]


@pytest.mark.parametrize("model", [LSTM, TRANSFORMER], ids=["lstm", "transformer"])
def test_auto_tier_trains_on_numpy_first_and_carries_on_with_the_kernels(monkeypatch, model):
    cfg = config(model)
    monkeypatch.setattr(tiers, "kernels_cached", lambda cfg: False)  # as on a fresh install
    auto, kernels = Experiment(cfg, tier="auto"), Experiment(cfg, tier="kernels")
    assert auto.tier == "reference"  # it swaps only between steps
    records = [auto.step() for _ in range(3)]
    before, state = auto.params(), [s.copy() for s in auto._state[:2]]
    assert auto.wait_for_kernels(timeout=600)
    assert auto.tier == "kernels" and auto.warmup is None
    for name, value in auto.params().items():  # the swap itself changes nothing
        np.testing.assert_array_equal(value, before[name])
    for saved, now in zip(state, auto._state[:2]):
        np.testing.assert_array_equal(saved, now)
    records += [auto.step() for _ in range(5)]
    assert [r.step for r in records] == list(range(1, 9))
    expected = [kernels.step().loss for _ in range(8)]
    np.testing.assert_allclose([r.loss for r in records], expected, rtol=RTOL)


def test_auto_tier_uses_cached_kernels_at_once():
    cfg = config(LSTM)
    Experiment(cfg, tier="kernels").run(1)  # compiles (or loads) them into the cache
    Experiment(cfg, tier="kernels").evaluate()
    assert tiers.kernels_cached(cfg)
    exp = Experiment(cfg, tier="auto")
    assert exp.tier == "kernels" and exp.warmup is None


def test_unknown_tier_is_refused_with_the_allowed_ones():
    with pytest.raises(ValueError, match="auto, reference, kernels"):
        Experiment(config({}), tier="numba")


PARENT = """
import os, sys, threading, time
from gradtui.config import load_config
from gradtui.engine.tiers import _compile_in_child
threading.Thread(target=_compile_in_child, args=(load_config("vanishing-sigmoid"),), daemon=True).start()
me = str(os.getpid())

def children():
    found = []
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(line.split()[1:] == [me] for line in open(f"/proc/{p}/status") if line.startswith("PPid:")):
                found.append(p)
        except OSError:  # the process ended while being read
            pass
    return found

end = time.monotonic() + 60  # on a loaded machine the child can take a while to appear
while not (kids := children()) and time.monotonic() < end:
    time.sleep(0.1)
time.sleep(2)  # the child is importing and compiling into an empty cache (a minute's work)
print(" ".join(children()))
"""


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads child processes from /proc (Linux)")
def test_the_compiling_child_ends_with_the_gradtui_process_that_started_it(tmp_path):
    """Quitting gradtui during a cold start must not leave a compile running in the background."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)  # an empty cache: the child has a minute of compiling ahead
    done = subprocess.run([sys.executable, "-c", PARENT], env=env, capture_output=True, text=True, timeout=180)
    kids = done.stdout.split()
    assert done.returncode == 0 and kids, (done.stdout, done.stderr)  # the compile had started when the parent ended
    end = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}") for pid in kids) and time.monotonic() < end:
        time.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in kids), f"compile processes {kids} outlived their parent"
