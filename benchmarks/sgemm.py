"""Single-thread matrix-multiply throughput: the hardware ceiling for gradtui's engine.

``sgemm_gflops(m, k, n)`` times C = A B with A (m, k), B (k, n) and reports
GFLOP/s = 2 m k n / seconds-per-product / 1e9, for two routes to BLAS:

* ``numpy``: ``a @ b`` (NumPy's BLAS);
* ``numba``: an ``@njit`` loop calling ``np.dot(a, b, out)`` (Numba's BLAS, which is SciPy's,
  via ``scipy.linalg.cython_blas``), so no Python dispatch sits between products.

Both run under ``threadpoolctl.threadpool_limits(1)``: every loaded BLAS uses one thread.
``peak_sgemm_gflops()`` is the same measurement on large square 512 x 512 products.

Run ``python -m benchmarks.sgemm [m k n]`` to print both.
"""

from __future__ import annotations

import sys
import time

import numba
import numpy as np
import scipy.linalg  # noqa: F401  (loads SciPy's BLAS before threadpoolctl looks for libraries)
from threadpoolctl import threadpool_limits


@numba.njit(cache=False)
def _dot_loop(a, b, out, reps):
    for _ in range(reps):
        np.dot(a, b, out)
    return out[0, 0]


def _numpy_loop(a, b, out, reps):
    for _ in range(reps):
        np.matmul(a, b, out=out)
    return out[0, 0]


def _best_seconds_per_call(loop, a, b, out, seconds: float) -> float:
    """Calibrate a repetition count lasting ~seconds/5, then take the best of 5 timed runs."""
    loop(a, b, out, 1)  # warm-up (and, for Numba, compilation)
    reps = 1
    while True:
        t0 = time.perf_counter()
        loop(a, b, out, reps)
        dt = time.perf_counter() - t0
        if dt >= seconds / 20 or reps >= 1 << 30:
            break
        reps *= 2
    reps = max(1, int(reps * (seconds / 5) / max(dt, 1e-9)))
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        loop(a, b, out, reps)
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def sgemm_gflops(m: int, k: int, n: int, dtype=np.float32, seconds: float = 0.5) -> dict:
    """Single-thread GFLOP/s of an (m, k) x (k, n) product in ``dtype``.

    Returns {"m", "k", "n", "dtype", "numpy", "numba", "best", "best_route"}, each rate
    2 m k n / t / 1e9 with t the best per-product time; ``seconds`` is roughly the time
    spent per route.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    out = np.empty((m, n), dtype)
    _dot_loop(a, b, out, 1)  # compile outside the limit so SciPy's BLAS is loaded when it is set
    flops = 2.0 * m * k * n
    with threadpool_limits(limits=1):
        rates = {
            "numpy": flops / _best_seconds_per_call(_numpy_loop, a, b, out, seconds) / 1e9,
            "numba": flops / _best_seconds_per_call(_dot_loop, a, b, out, seconds) / 1e9,
        }
    route = max(rates, key=rates.get)
    return dict(m=m, k=k, n=n, dtype=np.dtype(dtype).name, **rates, best=rates[route], best_route=route)


PEAK_SIZE = 512


def peak_sgemm_gflops(size: int = PEAK_SIZE, dtype=np.float32, seconds: float = 0.5) -> dict:
    """``sgemm_gflops`` on a large square size x size x size product: the single-thread peak."""
    return sgemm_gflops(size, size, size, dtype, seconds)


def main(argv: list[str]) -> int:
    shapes = [tuple(int(v) for v in argv[:3])] if len(argv) >= 3 else [(64, 64, 64)]
    for m, k, n in shapes:
        r = sgemm_gflops(m, k, n)
        print(f"{m}x{k}x{n} float32: numpy {r['numpy']:.1f}  numba {r['numba']:.1f}  best {r['best']:.1f} GFLOP/s")
    r = peak_sgemm_gflops()
    print(f"peak 512^3 float32: numpy {r['numpy']:.1f}  numba {r['numba']:.1f}  best {r['best']:.1f} GFLOP/s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
