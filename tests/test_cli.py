"""The command line in a real subprocess: records, Ctrl-C, and one clear message for bad input."""

import json
import os
import signal
import subprocess
import time

import pytest

from gradtui import read_record

from conftest import CMD, ENV
from conftest import gradtui_cli as gradtui

TINY = ["--set", "model.depth=3", "--set", "model.width=8", "--set", "data.samples=256", "--set", "train.batch_size=32"]


def test_run_with_record_every_k(tmp_path):
    path = tmp_path / "run.jsonl"
    r = gradtui("run", "vanishing-sigmoid", *TINY, "--steps", "30", "--every", "3", "--record", str(path))
    assert r.returncode == 0, r.stderr
    lines = path.read_text().splitlines()
    objs = [json.loads(line) for line in lines]  # every line parses
    assert objs[0]["type"] == "header" and objs[0]["config"]["model"]["depth"] == 3 and objs[0]["every"] == 3
    steps = [o["step"] for o in objs if o["type"] == "step"]
    assert steps == list(range(3, 31, 3))
    assert objs[-1]["event"] == "end" and objs[-1]["reason"] == "finished"
    assert "Per-layer statistics at step 30" in r.stdout and "input side first" in r.stdout
    assert "gradient norm" in r.stdout and "Traceback" not in r.stderr


def test_quiet_prints_one_line(tmp_path):
    r = gradtui("run", "vanishing-sigmoid", *TINY, "--steps", "20", "--quiet", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) == 1 and r.stdout.startswith("20 steps in")


def test_sigint_mid_run_leaves_a_valid_record_and_exits_130(tmp_path):
    path = tmp_path / "run.jsonl"
    # A shell that starts jobs in the background sets SIGINT to "ignored", and Python then
    # installs no KeyboardInterrupt handler: give the child the default, as a terminal would.
    proc = subprocess.Popen(CMD + ["run", "vanishing-sigmoid", *TINY, "--steps", "100000000", "--record", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if path.exists() and path.read_text().count("\n") > 200:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the run never wrote 200 lines")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert "Interrupted after" in out and "Per-layer statistics" in out
    for line in path.read_text().splitlines():
        json.loads(line)
    rec = read_record(path)
    assert rec.problems == [] and len(rec.steps) > 100
    assert rec.events[-1]["event"] == "end"


@pytest.mark.parametrize("args, needle", [
    (["run", "no-such-preset"], "unknown preset 'no-such-preset'"),
    (["run", "vanishing-sigmoid", "--set", "model.dpth=3"], "did you mean model.depth"),
    (["run", "vanishing-sigmoid", "--set", "model.depth=deep"], "model.depth = 'deep' is not allowed"),
    (["check", "vanishing-sigmoid", "--set", "model.activation=swish"], "model.activation"),
    (["run", "vanishing-sigmoid", "--set", "depth"], "is not KEY=VALUE"),
    (["check", "{bad_toml}"], "line 3"),
    (["run", "vanishing-sigmoid", "--record", "{existing}"], "already exists"),
    (["run", "vanishing-sigmoid", "--record", "{missing_dir}"], "does not exist"),
    (["run", "vanishing-sigmoid", "--steps", "0"], "must be at least 1"),
    (["check", "{tmp}/nope.toml"], "no preset file"),
    (["no-such-preset"], "unknown preset"),  # the interactive form checks before opening the interface
    (["--set", "model.depth=0"], "model.depth = 0 is not allowed"),
])
def test_bad_input_is_one_clear_message(tmp_path, args, needle):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\ndepth = 3\nwidth = = 4\n")
    existing = tmp_path / "old.jsonl"
    existing.write_text("keep me\n")
    subs = {"{bad_toml}": str(bad), "{existing}": str(existing), "{missing_dir}": str(tmp_path / "no" / "r.jsonl"),
            "{tmp}": str(tmp_path)}
    args = [subs.get(a, a.replace("{tmp}", str(tmp_path))) for a in args]
    r = gradtui(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and needle in errors[0], r.stderr
    assert existing.read_text() == "keep me\n"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_is_reported():
    r = gradtui("run", "vanishing-sigmoid", *TINY, "--steps", "50", "--record", "/dev/full", "--force")
    assert r.returncode == 1
    assert "No space left on device" in r.stderr and "Traceback" not in r.stderr


def test_nonfinite_run_stops_with_status_1(tmp_path):
    path = tmp_path / "run.jsonl"
    r = gradtui("run", "vanishing-sigmoid", *TINY, "--set", "data.task=teacher", "--set", "model.activation=relu",
                "--set", "model.init=he", "--set", "model.init_gain=10", "--set", "train.lr=1000", "--steps", "100",
                "--record", str(path))
    assert r.returncode == 1, r.stderr
    assert "non-finite values" in r.stderr and "Traceback" not in r.stderr
    rec = read_record(path)
    assert rec.steps[-1]["nonfinite"] is True
    assert [e["event"] for e in rec.events][-1] == "end" and rec.events[-1]["reason"] == "nonfinite"


def test_presets_and_check():
    r = gradtui("presets")
    assert r.returncode == 0 and "vanishing-sigmoid" in r.stdout
    r = gradtui("check", "vanishing-sigmoid", "--set", "model.depth=3")
    assert r.returncode == 0, r.stderr
    assert "[model]" in r.stdout and "depth = 3" in r.stdout and "valid" in r.stdout
