"""End to end: the installed ``gradtui`` command in a real pseudo-terminal (pexpect).

Starts the default preset, waits for the gradient bars, presses ``a``, sees the
activation change in the model summary, presses ``q`` and expects a clean exit with
the terminal restored (alternate screen left, cursor shown).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")


def gradtui_command() -> str | None:
    here = Path(sys.executable).parent / "gradtui"
    if here.is_file():
        return str(here)
    return shutil.which("gradtui")


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[=>]")


@pytest.mark.skipif(gradtui_command() is None, reason="the gradtui command is not installed")
def test_gradtui_in_a_real_terminal(tmp_path):
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="100", LINES="30")
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(gradtui_command(), [], env=env, cwd=str(tmp_path), dimensions=(30, 100),
                          encoding="utf-8", codec_errors="replace", timeout=90)
    try:
        child.expect("hidden\\.0", timeout=90)  # the bars are drawn
        child.expect("sigmoid", timeout=30)
        child.send("a")
        # the alert's remedy (relu) or the next activation in the cycle (tanh)
        child.expect(r"mlp 20x64 (relu|tanh|leaky_relu)", timeout=30)
        child.send("q")
        child.expect(pexpect.EOF, timeout=30)
        tail = child.before or ""
    finally:
        if child.isalive():
            child.terminate(force=True)
    child.close()
    assert child.exitstatus == 0, tail[-2000:]
    assert "Traceback" not in ANSI.sub("", tail)
    assert "\x1b[?1049l" in tail  # left the alternate screen: the terminal is restored


@pytest.mark.skipif(gradtui_command() is None, reason="the gradtui command is not installed")
@pytest.mark.parametrize("args", [["no-such-preset"], ["vanishing-sigmoid", "--set", "model.depth=-3"]])
def test_bad_input_exits_2_with_a_message_and_no_screen(args, tmp_path):
    """Never a traceback, never a half-drawn screen: the same message as `gradtui check`, exit 2."""
    import subprocess

    result = subprocess.run([gradtui_command(), *args], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    out = result.stdout + result.stderr
    assert "Traceback" not in out and "\x1b[?1049h" not in out
    check = subprocess.run([gradtui_command(), "check", *args], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert check.returncode == 2
    first = lambda text: next(line for line in text.splitlines() if line.strip())  # noqa: E731
    assert first(result.stderr or result.stdout) == first(check.stderr or check.stdout)
