"""MLP engine speed, side by side with plain NumPy and the machine's SGEMM, in one run.

    python -m benchmarks.bench_mlp [--seconds S] [--rounds R]

For (depth, width, batch) in (20, 64, 64), (50, 128, 128), (100, 32, 32), tanh, float32,
all statistics on, BLAS limited to one thread, it prints:
  - steps/s of gradtui's fused step and of benchmarks.numpy_reference.NumpyMLP, and their ratio;
  - single-thread SGEMM GFLOP/s at the step's own matrix shapes (batch x width x width);
  - the fused step's achieved GFLOP/s (the step's matrix-product FLOPs x steps/s);
  - the cost of the statistics: 1 - (fused step with statistics) / (the same without them).
Rounds alternate between the implementations and the medians are reported, because the
machine is shared and noisy: compare the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

import gradtui
from benchmarks.numpy_reference import NumpyMLP
from benchmarks.sgemm import sgemm_gflops

SHAPES = ((20, 64, 64), (50, 128, 128), (100, 32, 32))
TARGETS = {(20, 64, 64): 1.7, (100, 32, 32): 4.0}
SGEMM_TARGET = 0.60
STATS_TARGET = 0.15


def experiment(depth: int, width: int, batch: int) -> gradtui.Experiment:
    cfg = gradtui.load_config("vanishing-sigmoid").with_overrides({
        "model.depth": depth, "model.width": width, "model.activation": "tanh", "model.init": "xavier",
        "train.batch_size": batch, "data.samples": max(2048, 4 * batch),
    })
    return gradtui.Experiment(cfg)


def fused_step(exp: gradtui.Experiment, statistics: bool):
    """One training step through the fused kernel, with or without the per-layer statistics
    (the same call path either way, so the difference is the statistics' cost)."""
    table = np.zeros((1, 9, len(exp.layer_names)))
    losses, totals, clipped = np.zeros(1), np.zeros(1), np.zeros(1, dtype=np.bool_)

    def step():
        batches, _ = exp._take_batches(1)
        _, flipped, _ = exp.network.train_steps(
            exp.theta, exp._spare, exp._state, exp.grad, exp._segments, exp._x_train, exp._y_train, batches,
            exp.cfg.train, exp._updates + 1, table, losses, totals, clipped, statistics=statistics)
        if flipped:
            exp.theta, exp._spare = exp._spare, exp.theta
            exp._state = exp._state[2:] + exp._state[:2]
        exp._updates += 1
    return step


def rate(fn, seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds``."""
    fn()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        count += 1
    return count / elapsed


def matmul_flops(exp: gradtui.Experiment, batch: int) -> float:
    """FLOPs of one step's matrix products: forward h W, backward h^T delta and delta W^T (not for layer 0)."""
    table = exp.network.table
    per_layer = [2.0 * batch * fi * fo for fi, fo in zip(table[:, 5], table[:, 6])]
    return 3.0 * sum(per_layer) - per_layer[0]


def measure(depth: int, width: int, batch: int, seconds: float, rounds: int) -> dict:
    exp = experiment(depth, width, batch)
    data = exp.data
    ref = NumpyMLP(depth, width, data.n_in, data.n_out, "tanh", dtype=np.float32, seed=0)
    x, y = exp.batch()
    x32 = x.astype(np.float32)
    with_stats = fused_step(experiment(depth, width, batch), statistics=True)
    without = fused_step(experiment(depth, width, batch), statistics=False)
    runs = {"engine": [], "numpy": [], "with": [], "without": []}
    for _ in range(rounds):
        runs["engine"].append(rate(exp.step, seconds))
        runs["numpy"].append(rate(lambda: ref.step(x32, y, 0.01), seconds))
        runs["with"].append(rate(with_stats, seconds / 2))
        runs["without"].append(rate(without, seconds / 2))
    med = {k: statistics.median(v) for k, v in runs.items()}
    sgemm = sgemm_gflops(batch, width, width, seconds=seconds)["best"]
    achieved = matmul_flops(exp, batch) * med["engine"] / 1e9
    return {
        "engine": med["engine"], "numpy": med["numpy"], "ratio": med["engine"] / med["numpy"],
        "sgemm": sgemm, "achieved": achieved, "of_sgemm": achieved / sgemm,
        "stats_cost": 1.0 - med["with"] / med["without"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians reported (default 3)")
    args = parser.parse_args(argv)
    header = (f"{'depth x width, batch':>22} {'gradtui/s':>10} {'numpy/s':>9} {'ratio':>6} "
              f"{'SGEMM GF/s':>10} {'step GF/s':>9} {'of SGEMM':>8} {'stats cost':>10}")
    print("MLP step, tanh, float32, all statistics on, 1 BLAS thread (medians)")
    print(header)
    failures = []
    with threadpool_limits(1):
        for shape in SHAPES:
            r = measure(*shape, args.seconds, args.rounds)
            d, w, b = shape
            print(f"{f'{d} x {w}, {b}':>22} {r['engine']:>10.0f} {r['numpy']:>9.0f} {r['ratio']:>5.2f}x "
                  f"{r['sgemm']:>10.1f} {r['achieved']:>9.1f} {r['of_sgemm']:>7.0%} {r['stats_cost']:>9.1%}")
            if shape in TARGETS and r["ratio"] < TARGETS[shape]:
                failures.append(f"{shape}: {r['ratio']:.2f}x NumPy < {TARGETS[shape]}x")
            if shape == (20, 64, 64) and r["of_sgemm"] < SGEMM_TARGET:
                failures.append(f"{shape}: {r['of_sgemm']:.0%} of SGEMM < {SGEMM_TARGET:.0%}")
            if r["stats_cost"] > STATS_TARGET:
                failures.append(f"{shape}: statistics cost {r['stats_cost']:.1%} > {STATS_TARGET:.0%}")
    print("targets: >= 1.7x NumPy at 20x64/64, >= 4x at 100x32/32, >= 60% of SGEMM at 20x64/64, statistics <= 15%")
    print("all targets met" if not failures else "missed: " + "; ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
