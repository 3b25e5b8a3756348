"""Interface responsiveness: key-press-to-screen latency and training speed with the UI open.

Runs the installed ``gradtui`` command in a real pseudo-terminal (pexpect), as a user
would, next to a headless Session on the same preset, and prints one table:

* training steps/s headless vs with the interface open (target: UI >= 90% of headless, issue 14),
  in interleaved rounds (headless then the interface, then the other way round); the verdict is
  the median of the rounds' ratios, since the load of a shared machine moves between rounds;
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


def step_rate(child, seconds: float) -> float:
    """Steps/s read off the header ("step 1,234") over ``seconds``: first and last sighting, timed."""
    seen, buffer, end = [], "", time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            buffer += child.read_nonblocking(65536, timeout=0.05)
        except pexpect.TIMEOUT:
            continue
        text = ANSI.sub("", buffer)
        step = last_step(text)
        if step is not None:
            seen.append((time.perf_counter(), step))
            buffer = ""
        else:
            buffer = buffer[-4000:]
    if len(seen) < 2 or seen[-1][0] - seen[0][0] < 0.5 * seconds:
        return float("nan")
    (t0, s0), (t1, s1) = seen[0], seen[-1]
    return (s1 - s0) / (t1 - t0)


def ui_run(preset: str, seconds: float, presses: int) -> tuple[float, list[float], list[float]]:
    """(steps/s with the UI open, key-to-screen latencies while training runs, the same while paused)."""
    env = dict(os.environ, TERM="xterm-256color")
    child = pexpect.spawn(gradtui_command(), [preset], env=env, dimensions=(40, 120),
                          encoding="utf-8", codec_errors="replace", timeout=60)
    child.delaybeforesend = None  # pexpect sleeps 50 ms before every send by default
    try:
        child.expect("hidden\\.0", timeout=90)
        drain(child, 1.0)  # warm-up
        rate = step_rate(child, seconds)

        current = ["sgd"]

        def press_o() -> float:
            nxt = OPTIMIZERS[(OPTIMIZERS.index(current[0]) + 1) % len(OPTIMIZERS)]
            drain(child, 0.15)
            start = time.perf_counter()
            child.send("o")
            child.expect(rf"{nxt} lr", timeout=5)
            current[0] = nxt
            return time.perf_counter() - start

        running = [press_o() for _ in range(presses)]
        child.send(" ")  # pause: the same presses with the worker idle, as a baseline
        child.expect("paused", timeout=5)
        paused = [press_o() for _ in range(presses)]
        child.send("q")
        child.expect(pexpect.EOF, timeout=15)
    finally:
        if child.isalive():
            child.terminate(force=True)
    return rate, running, paused


def stats_ms(values: list[float]) -> tuple[float, float, float]:
    ms = sorted(x * 1000 for x in values)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return statistics.median(ms), p95, ms[-1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="vanishing-sigmoid")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--presses", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4, help="headless/UI pairs, interleaved")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    heads, uis, loads, running, paused = [], [], [], [], []
    for i in range(args.rounds):
        loads.append(os.getloadavg()[0])
        if i % 2:  # every other round the interface first: a load that drifts favours neither side
            rate, run_lat, pause_lat = ui_run(args.preset, args.seconds, args.presses)
            heads.append(headless_rate(args.preset, args.seconds))
        else:
            heads.append(headless_rate(args.preset, args.seconds))
            rate, run_lat, pause_lat = ui_run(args.preset, args.seconds, args.presses)
        uis.append(rate)
        running += run_lat
        paused += pause_lat
    load_after = os.getloadavg()[0]
    headless, ui_rate = statistics.mean(heads), statistics.mean(uis)
    ratios = [u / h if h else float("nan") for h, u in zip(heads, uis)]
    ratio = statistics.median(ratios)
    rmed, rp95, rmax = stats_ms(running)
    pmed, pp95, pmax = stats_ms(paused)

    print(f"gradtui UI benchmark · preset {args.preset} · {os.cpu_count()} cores · load average "
          f"{load_before:.1f} -> {load_after:.1f} · {args.rounds} x {args.seconds:g} s per mode · 120x40 pty")
    print(f"{'measure':<44} {'value':>10} {'target':>10} {'ok':>4}")
    print("-" * 72)
    rows = [
        ("training steps/s, headless (mean)", f"{headless:.0f}", "", ""),
        ("training steps/s, UI open (mean)", f"{ui_rate:.0f}", "", ""),
        ("UI / headless (median of rounds)", f"{ratio:.0%}", ">= 90%", "yes" if ratio >= 0.9 else "NO"),
        ("key to screen while training, median ms", f"{rmed:.1f}", "< 100", "yes" if rmed < 100 else "NO"),
        ("key to screen while training, p95 ms", f"{rp95:.1f}", "< 100", "yes" if rp95 < 100 else "NO"),
        ("key to screen while training, max ms", f"{rmax:.1f}", "", ""),
        ("key to screen while paused, median ms", f"{pmed:.1f}", "", ""),
        ("key to screen while paused, p95 ms", f"{pp95:.1f}", "", ""),
    ]
    for name, value, target, ok in rows:
        print(f"{name:<44} {value:>10} {target:>10} {ok:>4}")
    print("rounds (load average at the start: headless, UI open steps/s, ratio): " + "; ".join(
        f"{load:.1f}: {h:.0f}, {u:.0f}, {r:.0%}" for load, h, u, r in zip(loads, heads, uis, ratios)))
    if load_before > (os.cpu_count() or 1):
        print(f"note: the machine was busy (load {load_before:.1f} on {os.cpu_count()} cores); "
              "the ratios are only meaningful on an otherwise idle machine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
