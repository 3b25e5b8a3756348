"""Interface responsiveness: key-press-to-screen latency and training speed with the UI open.

Runs the installed ``gradtui`` command in a real pseudo-terminal (pexpect), as a user
would, next to a headless Session on the same preset, and prints one table:

* training steps/s headless vs with the interface open (target: UI >= 80% of headless);
* key press to screen: time from sending ``o`` (next optimiser) until the terminal
  output shows the new optimiser name, while training runs flat out (target < 100 ms).

Usage: python benchmarks/bench_ui.py [--preset NAME] [--seconds S] [--presses N]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

import pexpect

from gradtui.config import load_config
from gradtui.config.schema import OPTIMIZERS
from gradtui.session import Session

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[=>]")
STEP = re.compile(r"step ([\d,]+)")


def gradtui_command() -> str:
    here = Path(sys.executable).parent / "gradtui"
    return str(here) if here.is_file() else (shutil.which("gradtui") or "gradtui")


def headless_rate(preset: str, seconds: float) -> float:
    """Steps per second of a Session with nobody watching (after the kernels are loaded)."""
    s = Session(load_config(preset)).start()
    try:
        deadline = time.monotonic() + 60
        while s.snapshot().status == "compiling" and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)  # warm-up
        a, t0 = s.snapshot().step, time.perf_counter()
        time.sleep(seconds)
        b, t1 = s.snapshot().step, time.perf_counter()
    finally:
        s.stop()
    return (b - a) / (t1 - t0)


def drain(child, seconds: float) -> str:
    """Read the terminal output for ``seconds``; return it without escape codes."""
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            out.append(child.read_nonblocking(65536, timeout=0.05))
        except pexpect.TIMEOUT:
            pass
    return ANSI.sub("", "".join(out))


def last_step(text: str) -> int | None:
    found = STEP.findall(text)
    return int(found[-1].replace(",", "")) if found else None


def ui_run(preset: str, seconds: float, presses: int) -> tuple[float, list[float]]:
    """(steps/s with the UI open, [key-to-screen latencies in seconds])."""
    env = dict(os.environ, TERM="xterm-256color")
    child = pexpect.spawn(gradtui_command(), [preset], env=env, dimensions=(40, 120),
                          encoding="utf-8", codec_errors="replace", timeout=60)
    try:
        child.expect("hidden\\.0", timeout=90)
        drain(child, 1.0)  # warm-up
        t0 = time.perf_counter()
        first = last_step(drain(child, 0.3))
        text = drain(child, seconds)
        t1 = time.perf_counter()
        last = last_step(text)
        rate = (last - first) / (t1 - t0 - 0.3) if first is not None and last is not None else float("nan")

        latencies = []
        current = "sgd"
        for _ in range(presses):
            nxt = OPTIMIZERS[(OPTIMIZERS.index(current) + 1) % len(OPTIMIZERS)]
            drain(child, 0.2)
            start = time.perf_counter()
            child.send("o")
            child.expect(rf"{nxt} lr", timeout=5)
            latencies.append(time.perf_counter() - start)
            current = nxt
        child.send("q")
        child.expect(pexpect.EOF, timeout=15)
    finally:
        if child.isalive():
            child.terminate(force=True)
    return rate, latencies


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="vanishing-sigmoid")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--presses", type=int, default=12)
    args = parser.parse_args(argv)

    head1 = headless_rate(args.preset, args.seconds)
    ui_rate, lat = ui_run(args.preset, args.seconds, args.presses)
    head2 = headless_rate(args.preset, args.seconds)
    headless = (head1 + head2) / 2
    ms = sorted(x * 1000 for x in lat)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    ratio = ui_rate / headless if headless else float("nan")

    print(f"gradtui UI benchmark · preset {args.preset} · {os.cpu_count()} cores · {args.seconds:g} s per measurement")
    print(f"{'measure':<40} {'value':>12} {'target':>12} {'ok':>4}")
    print("-" * 72)
    print(f"{'training steps/s, headless (mean of 2)':<40} {headless:>12.0f} {'':>12} {'':>4}")
    print(f"{'training steps/s, UI open':<40} {ui_rate:>12.0f} {'':>12} {'':>4}")
    print(f"{'UI / headless':<40} {ratio:>11.0%} {'>= 80%':>12} {'yes' if ratio >= 0.8 else 'NO':>4}")
    print(f"{'key to screen, median ms':<40} {statistics.median(ms):>12.1f} {'< 100':>12} {'yes' if statistics.median(ms) < 100 else 'NO':>4}")
    print(f"{'key to screen, p95 ms':<40} {p95:>12.1f} {'< 100':>12} {'yes' if p95 < 100 else 'NO':>4}")
    print(f"{'key to screen, max ms':<40} {ms[-1]:>12.1f} {'':>12} {'':>4}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
