"""D W^T two ways, side by side in one run: BLAS with a transposed operand, and a transpose
into scratch followed by a plain product (gradtui.engine.blocks.dot_transposed picks the
second at or below TRANSPOSE_MAX_WEIGHTS weights).

    python -m benchmarks.transpose

Prints microseconds per product (best of 7) for square layers of width 32, 64, 96 and 128
with the batch equal to the width, and the plain product D W for reference.
"""

from __future__ import annotations

import sys
import time

import numba
import numpy as np
import scipy.linalg  # noqa: F401  (loads SciPy's BLAS before threadpoolctl looks for libraries)
from gradtui.engine.blas import one_blas_thread

from gradtui.engine.blocks import TRANSPOSE_MAX_WEIGHTS, transpose_into

LAYERS = 20


@numba.njit(nogil=True)
def _chain(Ws, D, scratch, reps, route):
    for _ in range(reps):
        for l in range(Ws.shape[0]):
            if route == 0:
                np.dot(D[l], Ws[l].T, D[l + 1])
            elif route == 1:
                np.dot(D[l], transpose_into(Ws[l], scratch), D[l + 1])
            else:
                np.dot(D[l], Ws[l], D[l + 1])


def microseconds(width: int, route: int, reps: int = 400) -> float:
    rng = np.random.default_rng(0)
    Ws = (rng.standard_normal((LAYERS, width, width)) / np.sqrt(width)).astype(np.float32)
    D = rng.standard_normal((LAYERS + 1, width, width)).astype(np.float32)
    scratch = np.empty(width * width, np.float32)
    _chain(Ws, D, scratch, 1, route)
    best = float("inf")
    for _ in range(7):
        t0 = time.perf_counter()
        _chain(Ws, D, scratch, reps, route)
        best = min(best, (time.perf_counter() - t0) / (reps * LAYERS))
    return best * 1e6


def main() -> int:
    print(f"D W^T, float32, 1 BLAS thread; us per product (best of 7); transpose route used up to {TRANSPOSE_MAX_WEIGHTS} weights")
    print(f"{'width':>6} {'BLAS D W^T':>11} {'transpose + D W':>16} {'plain D W':>10}")
    with one_blas_thread():
        for width in (32, 64, 96, 128):
            nt, tr, nn = (microseconds(width, route) for route in (0, 1, 2))
            print(f"{width:>6} {nt:>11.2f} {tr:>16.2f} {nn:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
