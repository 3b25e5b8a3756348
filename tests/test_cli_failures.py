"""Every expected failure of the command line is one line and the right exit status."""

import json
import signal
import subprocess
import time

import pytest

from gradtui.cli_run import projected_record_bytes
from gradtui.config import load_config
from gradtui.engine.memory import available_memory, check_fits, estimate_memory
from test_cli import CMD, ENV, TINY, gradtui

LONG = "a" * 300
HUGE = "9" * 400


def one_error_line(r):
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 1 and lines[0].startswith("gradtui: error: "), r.stderr
    return lines[0]


@pytest.mark.parametrize("args, needle", [
    (["check", "vanishing-sigmoid", "--set", f"train.lr={HUGE}"], "train.lr = '999999999999...999999 (400 characters)'"),
    (["check", "big.toml"], "train.lr = 999999999999...999999 (400 characters) is not allowed"),
    (["check", "deep.toml"], "nested too deeply"),
    (["check", LONG], "(300 characters)"),
    (["check", f"{LONG}.toml"], "(305 characters)"),
    (["run", "vanishing-sigmoid", "--record", f"{LONG}.jsonl"], "File name too long"),
    (["check", "vanishing-sigmoid", "--set", "=3"], "unknown key '' (keys are SECTION.NAME; allowed: [model] kind"),
    (["check", "vanishing-sigmoid", "--set", "name=foo"], "unknown key name (keys are SECTION.NAME; allowed: [model] kind"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needle):
    (tmp_path / "big.toml").write_text(f"[train]\nlr = {HUGE}\n")
    (tmp_path / "deep.toml").write_text("[model]\ndepth = " + "[" * 2000 + "]" * 2000 + "\n")
    r = subprocess.run(CMD + args, capture_output=True, text=True, timeout=120, env=ENV, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert needle in one_error_line(r)


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_config_too_large_for_memory_is_refused_before_anything_starts(tmp_path, command):
    record = tmp_path / "run.jsonl"
    extra = ["--record", str(record)] if command == "run" else []
    r = gradtui(command, "vanishing-sigmoid", "--set", "model.depth=1000", "--set", "model.width=4096", *extra)
    assert r.returncode == 2
    line = one_error_line(r)
    assert "this config needs about" in line and "GiB" in line and "available on this machine" in line
    assert not record.exists()


def test_check_states_the_memory_a_run_needs():
    r = gradtui("check", "vanishing-sigmoid")
    assert r.returncode == 0
    assert "Memory: about" in r.stdout and "parameters" in r.stdout and "available." in r.stdout


def test_the_memory_estimate_follows_the_real_allocations():
    """The engine's part of the estimate against the NumPy buffers an Experiment holds after
    training and evaluating (tracemalloc's NumPy domain), for an MLP and an LSTM."""
    import tracemalloc

    import numpy as np

    import gradtui

    configs = [load_config("vanishing-sigmoid").with_overrides({"model.depth": 6, "model.width": 256}),
               load_config("batchnorm-rescue").with_overrides({"model.width": 128, "model.activation": "prelu"}),
               load_config("lstm-adding").with_overrides({"model.width": 64, "data.seq_len": 40, "data.samples": 1000})]
    numpy_only = [tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)]
    for cfg in configs:
        gradtui.Experiment(cfg).run(1)  # load the kernels first: their import is not the run's memory
        tracemalloc.start()
        exp = gradtui.Experiment(cfg)
        exp.run(2)
        exp.evaluate()
        held = sum(t.size for t in tracemalloc.take_snapshot().filter_traces(numpy_only).traces)
        tracemalloc.stop()
        engine = estimate_memory(cfg).engine
        assert 0.8 * held < engine < 1.25 * held, (cfg.name, engine, held)
        del exp


def test_check_fits_states_the_estimate_and_the_memory_available():
    from gradtui.config import ConfigError

    cfg = load_config("vanishing-sigmoid")
    assert check_fits(cfg, available=10**12).total == estimate_memory(cfg).total
    with pytest.raises(ConfigError, match=r"needs about .* MiB of memory .* more than the 1\.0 KiB available"):
        check_fits(cfg, available=1024)
    assert available_memory() > 0


def test_a_closed_pipe_is_exit_0():
    for args in (["presets"], ["check", "vanishing-sigmoid"]):
        proc = subprocess.Popen(CMD + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        proc.stdout.close()  # the reader is gone before the first line: `| head -0`
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 0, err
        assert err == ""


def test_a_failed_record_is_not_reported_as_success_in_quiet_mode():
    r = gradtui("run", "vanishing-sigmoid", *TINY, "--steps", "20", "--record", "/dev/full", "--force", "--quiet")
    assert r.returncode == 1
    assert r.stdout == ""
    assert "No space left on device" in r.stderr and "Traceback" not in r.stderr


def test_projected_record_size_matches_a_real_record(tmp_path):
    path = tmp_path / "run.jsonl"
    r = gradtui("run", "vanishing-sigmoid", *TINY, "--steps", "40", "--record", str(path), "--quiet")
    assert r.returncode == 0, r.stderr
    step_bytes = sum(len(line) + 1 for line in path.read_text().splitlines() if json.loads(line)["type"] == "step")
    cfg = load_config("vanishing-sigmoid").with_overrides({"model.depth": 3, "model.width": 8})
    assert 0.75 * step_bytes < projected_record_bytes(cfg, 40, 1) < 1.33 * step_bytes


def test_a_record_projected_past_1_gb_is_announced_at_the_start(tmp_path):
    path, err_path = tmp_path / "run.jsonl", tmp_path / "stderr.txt"
    with open(err_path, "w") as err_file:
        proc = subprocess.Popen(CMD + ["run", "vanishing-sigmoid", "--steps", "1000000", "--record", str(path)],
                                stdout=subprocess.DEVNULL, stderr=err_file, env=ENV,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.monotonic() + 60
            while "the record will grow" not in err_path.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        finally:
            proc.kill()
    text = err_path.read_text()
    assert "gradtui: note: the record will grow to about" in text and "GB (1,000,000 steps, every 1)" in text
    small = gradtui("run", "vanishing-sigmoid", *TINY, "--steps", "20", "--record", str(tmp_path / "small.jsonl"))
    assert "the record will grow" not in small.stderr


def test_running_out_of_memory_anyway_is_one_line_and_exit_1(monkeypatch, capsys):
    """The estimate can be beaten by other programs taking memory meanwhile: a MemoryError in
    training is a plain message (no traceback), exit 1 (training stopped on a problem)."""
    from gradtui.cli import main
    from gradtui.engine import experiment

    def no_memory(self, cfg, data=None, tier="kernels"):
        raise MemoryError("Unable to allocate 62.5 GiB for an array with shape (16777216000,)")

    monkeypatch.setattr(experiment.Experiment, "__init__", no_memory)
    assert main(["run", "vanishing-sigmoid", *TINY, "--steps", "5", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "training failed: MemoryError: Unable to allocate 62.5 GiB" in err and "ran out of memory" in err
