"""What every side-by-side benchmark shares: timing one side for a while, and the median of
per-round ratios.

Two sides are timed in interleaved rounds (A, B, A, B, ...), each for about ``seconds``;
the ratio is taken within a round, so a moment when another process holds the core costs
both sides of that round alike, and the median over rounds is reported.
"""

from __future__ import annotations

import argparse
import statistics
import time


def rates(fn, seconds: float, steps_per_call: int = 1) -> tuple[float, float]:
    """Steps per second of ``fn`` (one warm-up call first) over about ``seconds`` of wall time:
    (per wall second, per CPU second of this thread)."""
    fn()
    count, start, cpu_start = 0, time.perf_counter(), time.thread_time()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        count += steps_per_call
    return count / elapsed, count / max(time.thread_time() - cpu_start, 1e-9)


def rate(fn, seconds: float, steps_per_call: int = 1) -> float:
    """Steps per wall second of ``fn`` over about ``seconds``."""
    return rates(fn, seconds, steps_per_call)[0]


def median_ratio(numerators, denominators, scale: float = 1.0) -> float:
    """Median over rounds of scale x numerator / denominator, pairing the rounds in order."""
    return statistics.median(scale * a / b for a, b in zip(numerators, denominators, strict=True))


def add_round_options(parser: argparse.ArgumentParser, seconds: float, rounds: int) -> None:
    """``--seconds`` (time per side per round) and ``--rounds`` with this benchmark's defaults."""
    parser.add_argument("--seconds", type=float, default=seconds, help=f"time per side per round (default {seconds:g})")
    parser.add_argument("--rounds", type=int, default=rounds, help=f"interleaved rounds (default {rounds})")
