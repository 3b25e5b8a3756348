"""SIGTERM and Ctrl-C at any moment: one line, the right exit status, a record that ends with "end"."""

import signal
import subprocess
import time

import pytest

from gradtui import read_record
from test_cli import CMD, ENV, TINY


def spawn(args, env=ENV):
    # Background jobs inherit SIGINT "ignored"; give the child the default, as a terminal would.
    return subprocess.Popen(CMD + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(predicate, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail("timed out")


def lines_in(path):
    return path.read_text().count("\n") if path.exists() else 0


def test_sigterm_mid_run_closes_the_record_and_exits_143(tmp_path):
    path = tmp_path / "run.jsonl"
    proc = spawn(["run", "vanishing-sigmoid", *TINY, "--steps", "100000000", "--record", str(path)])
    try:
        wait_for(lambda: lines_in(path) > 50)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM) at step" in err and "Traceback" not in err
    rec = read_record(path)
    assert rec.events[-1]["event"] == "end" and not rec.problems


def test_ctrl_c_during_the_first_compile_still_ends_the_record(tmp_path):
    path = tmp_path / "run.jsonl"
    cold = {**ENV, "NUMBA_CACHE_DIR": str(tmp_path / "cold-cache")}  # nothing cached: a long first compile
    # gradtui run trains on the NumPy tier while the kernels compile: the Ctrl-C lands mid-compile
    proc = spawn(["run", "vanishing-sigmoid", *TINY, "--steps", "100000000", "--record", str(path)], env=cold)
    try:
        wait_for(lambda: lines_in(path) >= 1)  # the header is written; the kernels compile in the background
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted at step" in err and "Traceback" not in err
    rec = read_record(path)
    assert rec.header["config"]["model"]["depth"] == 3
    assert [e["event"] for e in rec.events][-1] == "end"


@pytest.mark.parametrize("delay", [0.3, 1.0])
def test_ctrl_c_while_starting_is_one_line(delay, tmp_path):
    proc = spawn(["run", "vanishing-sigmoid", *TINY, "--steps", "100000000"])
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1].startswith("gradtui: interrupted")
