"""Helpers shared by the test files: small configs, waiting for a condition, recording a live run.

Plain helpers are imported (``from conftest import tiny, wait_for``); the fixtures below
build on them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gradtui import load_config
from gradtui.engine.blas import one_blas_thread

one_blas_thread()  # the tests train as the session's worker does: one BLAS thread (kept for the whole run)

# Presets whose run may go non-finite within their first 100 steps: that is what they show.
EXPLODING_PRESETS = frozenset({"cnn-exploding", "exploding-init", "orthogonal-deep-linear", "rnn-exploding"})

TINY = {"model.depth": 3, "model.width": 8, "data.samples": 256, "train.batch_size": 32, "train.eval_every": 50}


def tiny(**extra):
    """A small vanishing-sigmoid MLP (3 x 8) that trains in milliseconds."""
    return load_config("vanishing-sigmoid").with_overrides({**TINY, **extra})


def wait_for(cond, timeout: float = 60.0, interval: float = 0.01) -> bool:
    """Poll ``cond()`` until it is true (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return False


def record_live_run(cfg, path, steps: int, change_at: int | None = None, change: dict | None = None):
    """Train ``cfg`` live (a real Session) for ``steps`` steps, recording every step to ``path``;
    optionally apply ``change`` once step ``change_at`` is reached. Returns the final Snapshot
    (a non-finite pause ends the run early)."""
    from gradtui.session import Session

    s = Session(cfg, record_path=path, max_steps=steps, start_paused=change_at is not None)
    s.start()
    try:
        if change_at is not None:
            for _ in range(change_at):
                s.step_once()
            assert s.wait_commands(120) and wait_for(lambda: s.snapshot().step >= change_at, 120)
            s.apply(change)
            s.resume()
        assert s.wait(300), "the live run did not finish"
        snap = s.snapshot()
    finally:
        assert s.stop(5.0)
    return snap


@pytest.fixture
def tiny_config():
    """The factory :func:`tiny`."""
    return tiny


SCRIPT = Path(sys.executable).parent / "gradtui"
CMD = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "gradtui.cli"]
ENV = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}


def gradtui_cli(*args, timeout=120):
    """Run the installed `gradtui` command in a subprocess; the CompletedProcess (text)."""
    return subprocess.run(CMD + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=ENV)


def assert_gradients_have_no_side_effects(exp) -> None:
    """Experiment.gradients twice on one batch: the same loss and gradients, and neither the
    parameters nor the batch-norm running statistics change."""
    import numpy as np

    before = exp.params()
    x, y = exp.batch()
    loss1, g1 = exp.gradients(x, y)
    loss2, g2 = exp.gradients(x, y)
    assert loss1 == loss2
    for name in g1:
        np.testing.assert_array_equal(g1[name], g2[name])
        np.testing.assert_array_equal(before[name], exp.params()[name])
    np.testing.assert_array_equal(exp.network.running_mean, 0.0)


def recurrent_step(exp, theta, x, y):
    """One forward and backward pass of a recurrent Experiment's network at ``theta`` on (x, y)
    with every statistic: (loss, gradient, statistics by name)."""
    import numpy as np

    net = exp.network
    stats = {k: np.zeros(net.depth + 1) for k in ("act_mean", "act_std", "dead_fraction", "saturation", "delta_norm")}
    stats.update(net.extra_stats())
    grad = np.zeros_like(theta)
    loss = net.loss_and_grad(theta, grad, x, y, True, stats)
    return loss, grad, stats
