"""Steps per second of gradtui's fused recurrent step vs the plain NumPy BPTT reference.

    python -m benchmarks.bench_recurrent [--repeats 7] [--steps 40]

Both sides do the same work per step: forward over the whole sequence, the adding loss,
full BPTT, the statistics (per-layer, and ||dL/dh_t|| per step) and a plain SGD update.
Setting: one layer, hidden 64, T = 100, batch 32, adding problem, float32, BLAS limited to
one thread (threadpoolctl). The machine may be shared and noisy, so the engine and the
reference are timed in interleaved rounds and the medians are reported.
Targets (issue 3): >= 1.7x NumPy for the RNN, >= 1.5x for LSTM and GRU.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (load the BLAS Numba calls, so threadpoolctl limits it too)
from threadpoolctl import threadpool_info

from gradtui.engine.blas import one_blas_thread

import gradtui
from gradtui.engine.reference.numpy_mlp import NumpyRNN, adding_batch

HIDDEN, T, BATCH = 64, 100, 32
TARGETS = {"rnn": 1.7, "lstm": 1.5, "gru": 1.5}


def engine(kind: str) -> gradtui.Experiment:
    cfg = gradtui.load_config("vanishing-sigmoid").with_overrides({
        "model.kind": kind, "model.depth": 1, "model.width": HIDDEN, "model.activation": "tanh",
        "model.init": "xavier", "data.task": "adding", "data.seq_len": T, "data.samples": 4096,
        "train.batch_size": BATCH, "train.optimizer": "sgd", "train.lr": 0.01, "train.dtype": "float32",
    })
    return gradtui.Experiment(cfg)


def time_engine(exp, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        exp.step()
    return steps / (time.perf_counter() - start)


def time_numpy(ref, batches, steps: int) -> float:
    start = time.perf_counter()
    for s in range(steps):
        x, y = batches[s % len(batches)]
        ref.step(x, y, 0.01)
    return steps / (time.perf_counter() - start)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="interleaved rounds (median reported)")
    ap.add_argument("--steps", type=int, default=40, help="steps per timed round")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    batches = [adding_batch(BATCH, T, rng) for _ in range(8)]
    with one_blas_thread():
        blas = sorted({(i["internal_api"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"})
        print(f"recurrent step, hidden {HIDDEN}, T = {T}, batch {BATCH}, adding, float32, BLAS threads: {blas}")
        exps = {k: engine(k) for k in TARGETS}
        refs = {k: NumpyRNN(k, HIDDEN, 2, 1, T, dtype=np.float32) for k in TARGETS}
        for k in TARGETS:  # compile / warm up
            time_engine(exps[k], 5)
            time_numpy(refs[k], batches, 3)
        ours = {k: [] for k in TARGETS}
        theirs = {k: [] for k in TARGETS}
        for _ in range(args.repeats):
            for k in TARGETS:
                ours[k].append(time_engine(exps[k], args.steps))
                theirs[k].append(time_numpy(refs[k], batches, args.steps))
    print(f"{'cell':<6}{'gradtui steps/s':>17}{'numpy steps/s':>15}{'ratio':>8}{'target':>8}  ok")
    ok_all = True
    for k, target in TARGETS.items():
        a, b = statistics.median(ours[k]), statistics.median(theirs[k])
        ratio = statistics.median(x / y for x, y in zip(ours[k], theirs[k]))
        ok = ratio >= target
        ok_all &= ok
        print(f"{k:<6}{a:>17.1f}{b:>15.1f}{ratio:>7.2f}x{target:>7.1f}x  {'yes' if ok else 'NO'}")
    print("(medians of", args.repeats, "interleaved rounds of", args.steps, "steps; ratio = median of per-round ratios)")
    return 0 if ok_all else 1


if __name__ == "__main__":
    raise SystemExit(main())
