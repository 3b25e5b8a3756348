"""The headless summary: the time profile and the task's baseline for recurrent runs, and
suggestions that make sense and paste into a shell at 80 columns."""

import re

from gradtui.cli_output import fix_lines, headless_change
from gradtui.config import load_config
from gradtui.diagnosis.alert import Alert
from test_cli import CMD, ENV  # noqa: F401 - the same command and environment as the other CLI tests

import subprocess


def test_recurrent_summary_has_the_time_profile_and_the_baseline():
    env = {**ENV, "COLUMNS": "80"}
    r = subprocess.run(CMD + ["run", "rnn-vanishing-adding", "--steps", "60", "--set", "model.width=16"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())  # rich wraps prose at 80 columns
    assert "Gradient through time: |dL/dh_t| of the top layer" in text
    assert re.search(r"h_1 / h_\d+ = \S+: it (vanishes before reaching|reaches) the first steps", text)
    assert "the task's baseline (a constant guess) is 0.167" in text
    assert max(len(line) for line in r.stdout.splitlines()) <= 80


def test_fewer_layers_is_sized_by_the_measured_attenuation():
    cfg = load_config("vanishing-sigmoid")  # depth 20, alerts.vanishing_ratio 1e-3
    alert = Alert("vanishing", "critical", "", figure=1e-33)
    assert headless_change((("model.depth", 19),), alert, cfg) == (("model.depth", 2),)
    mild = Alert("vanishing", "critical", "", figure=1e-4)  # 19 gaps at 10^(-4/19) each: 15 layers keep 1e-3
    assert headless_change((("model.depth", 19),), mild, cfg) == (("model.depth", 15),)
    other = Alert("vanishing", "critical", "", figure=None)
    assert headless_change((("model.depth", 19), ("model.init", "he")), other, cfg) == (("model.depth", 19), ("model.init", "he"))


def test_suggestions_break_only_between_options():
    changes = [(("model.activation", "leaky_relu"), ("model.init", "he_uniform"), ("model.batchnorm", True),
                ("train.optimizer", "rmsprop"), ("train.lr", 0.001), ("model.recurrent_gain", 1.0)),
               (("model.depth", 2),)]
    for width in (60, 80):
        lines = fix_lines(changes, width)
        assert all(len(line) <= width for line in lines), lines
        joined = " ".join(line.rstrip(" \\") for line in lines)
        for change in changes:
            for key, value in change:
                assert f"--set {key}={str(value).lower() if isinstance(value, bool) else value}" in joined
        assert all(not line.rstrip(" \\").endswith("--set") for line in lines)
    assert fix_lines(changes, 80)[0].startswith("      try: --set") and fix_lines(changes, 80)[-1] == "       or: --set model.depth=2"
