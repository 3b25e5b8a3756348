"""Cold start: wall time from launch to the first training step and to full speed, on an empty cache.

    python -m benchmarks.bench_cold_start [--presets a,b,c] [--seconds S]

For each preset a fresh Python process starts with an empty Numba cache directory
(NUMBA_CACHE_DIR in a new temporary directory) and trains as ``gradtui run`` does: an
``Experiment(cfg, tier="auto")`` on one BLAS thread. It trains on the NumPy reference tier
while a thread compiles the kernels the config needs, and swaps to them between two steps.
Printed per preset, as seconds since the process was launched (interpreter start and
imports included): the first step, the swap to the kernels ("full speed"), the steps taken
on NumPy meanwhile, and steps/s on each tier (NumPy while compiling, kernels afterwards).
Targets (issue 14): the first step within 5 s of launch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

PRESETS = ("vanishing-sigmoid", "rnn-vanishing-adding", "lstm-adding")
FIRST_STEP_TARGET = 5.0

CHILD = r"""
import json, sys, time
launched = float(sys.argv[1]); seconds = float(sys.argv[3])
import scipy.linalg.cython_blas  # noqa: F401
from gradtui.engine.blas import one_blas_thread
import gradtui
with one_blas_thread():
    exp = gradtui.Experiment(gradtui.load_config(sys.argv[2]), tier="auto")
    started_on = exp.tier
    exp.step()
    first = time.time() - launched
    numpy_steps, numpy_start = 1, time.perf_counter()
    while exp.tier == "reference" and exp.warmup is not None:
        exp.step()
        numpy_steps += 1
    numpy_rate = (numpy_steps - 1) / max(time.perf_counter() - numpy_start, 1e-9)
    swap = time.time() - launched
    exp.step()  # the kernels' first call
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        exp.step()
        count += 1
    print(json.dumps(dict(started_on=started_on, first=first, swap=swap, numpy_steps=numpy_steps,
                          numpy_rate=numpy_rate, kernel_rate=count / (time.perf_counter() - start),
                          tier=exp.tier)))
"""


def cold_start(preset: str, seconds: float) -> dict:
    """Run one preset in a fresh process with an empty cache; its timings as a dict."""
    with tempfile.TemporaryDirectory(prefix="gradtui-cold-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        launched = time.time()
        out = subprocess.run([sys.executable, "-c", CHILD, repr(launched), preset, repr(seconds)],
                             env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{preset}: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default=",".join(PRESETS), help="comma-separated preset names")
    ap.add_argument("--seconds", type=float, default=2.0, help="time on the kernels to measure their speed")
    args = ap.parse_args(argv)
    print("cold start, empty Numba cache, Experiment(tier='auto'), one BLAS thread; seconds since launch")
    print(f"{'preset':<24}{'first step':>11}{'full speed':>11}{'NumPy steps':>12}{'NumPy/s':>9}{'kernels/s':>10}  ok")
    failures = []
    for preset in args.presets.split(","):
        r = cold_start(preset, args.seconds)
        ok = r["first"] <= FIRST_STEP_TARGET and r["started_on"] == "reference" and r["tier"] == "kernels"
        if not ok:
            failures.append(preset)
        print(f"{preset:<24}{r['first']:>10.1f}s{r['swap']:>10.1f}s{r['numpy_steps']:>12}{r['numpy_rate']:>9.0f}"
              f"{r['kernel_rate']:>10.0f}  {'yes' if ok else 'NO'}")
    print(f"target: first step within {FIRST_STEP_TARGET:.0f} s of launch, on NumPy, then on the kernels")
    print("all targets met" if not failures else "missed: " + ", ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
