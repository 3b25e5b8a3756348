"""Session throughput: steps/s of a bare Experiment.step() loop vs a Session read at 10 Hz.

    python benchmarks/bench_session.py [--seconds 2] [--repeats 5] [--set model.depth=3 ...]

Both run single-threaded BLAS (gradtui.engine.blas.one_blas_thread()), as the session does. The session
also feeds the history and the diagnosis every step, evaluates every train.eval_every
steps and publishes snapshots; a reader thread (here the main thread) polls
snapshot() at 10 Hz and touches its history like an interface would. Repeats are
interleaved (bare, session, bare, session ...); the ratio is taken within each repeat (its
two sides ran seconds apart, on the machine in the same state) and the median over repeats
is reported, with the median rates. Target: session / bare >= 0.90.
"""

from __future__ import annotations

import argparse
import statistics
import time

from gradtui.engine.blas import one_blas_thread

from gradtui import Experiment, load_config
from gradtui.config import parse_assignments
from gradtui.session import Session


def bare(cfg, seconds: float) -> float:
    with one_blas_thread():
        exp = Experiment(cfg)
        for _ in range(20):
            exp.step()
        n, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            exp.step()
            n += 1
    return n / elapsed


def session(cfg, seconds: float) -> float:
    s = Session(cfg).start()
    try:
        while s.snapshot().step < 20:
            time.sleep(0.01)
        s0, t0 = s._control.step, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            snap = s.snapshot()
            _ = (snap.history.loss[-1:], snap.latest.get("loss"), snap.alerts)  # what a frame reads
            time.sleep(0.1)
        steps, elapsed = s._control.step - s0, time.perf_counter() - t0
    finally:
        s.stop(2.0)
    return steps / elapsed


def breakdown(cfg, n: int = 2000) -> str:
    """Per-step cost of what the session adds, measured on recorded steps."""
    from gradtui.monitor.history import History
    from gradtui.diagnosis import Diagnoser

    with one_blas_thread():
        exp = Experiment(cfg)
        t0 = time.perf_counter()
        recs = [exp.step() for _ in range(n)]
        step = (time.perf_counter() - t0) / n
        parts = [f"step {step * 1e6:.1f} us"]
        d = Diagnoser(cfg, exp.layer_names)
        t0 = time.perf_counter()
        for r in recs:
            d.observe(r)
        parts.append(f"diagnosis {(time.perf_counter() - t0) / n * 1e6:.1f} us")
        h = History(2000)
        t0 = time.perf_counter()
        for r in recs:
            h.add_step(r)
        parts.append(f"history {(time.perf_counter() - t0) / n * 1e6:.1f} us")
        t0 = time.perf_counter()
        exp.evaluate()
        parts.append(f"evaluation {(time.perf_counter() - t0) / cfg.train.eval_every * 1e6:.1f} us amortised")
    return ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset", nargs="?", default="vanishing-sigmoid")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()
    configs = [("preset " + args.preset + (" " + " ".join(args.sets) if args.sets else ""),
                load_config(args.preset).with_overrides(parse_assignments(args.sets)))]
    if not args.sets:
        tiny = {"model.depth": 3, "model.width": 16}
        configs.append(("tiny (depth 3, width 16): Python overhead dominates",
                        load_config(args.preset).with_overrides(tiny)))
    import os

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work on the box skews both sides)")
    for label, cfg in configs:
        bare(cfg, 0.5)  # compile / load the kernels once
        b, s = [], []
        for _ in range(args.repeats):
            b.append(bare(cfg, args.seconds))
            s.append(session(cfg, args.seconds))
        mb, ms = statistics.median(b), statistics.median(s)
        ratio = statistics.median(x / y for x, y in zip(s, b))
        print(f"{label}")
        print(f"  bare Experiment.step() loop : {mb:10.1f} steps/s  (runs: {', '.join(f'{x:.0f}' for x in b)})")
        print(f"  Session + 10 Hz reader      : {ms:10.1f} steps/s  (runs: {', '.join(f'{x:.0f}' for x in s)})")
        print(f"  ratio session/bare          : {ratio:10.3f}  (median of per-repeat ratios; "
              f"target >= 0.90: {'met' if ratio >= 0.9 else 'NOT met'})")
        print(f"  per step: {breakdown(cfg)}")


if __name__ == "__main__":
    main()
