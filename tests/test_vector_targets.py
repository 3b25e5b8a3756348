"""The vector intrinsics on any processor: their IR must compile for every target (an x86-only
AVX-512 intrinsic made LLVM abort the process on an AVX2 machine), only processors with AVX2
take the vector paths, and both blockings of rows (16 accumulators on AVX-512, 4 on AVX2) give
the products, whichever processor runs the tests."""

import os
import subprocess
import sys

import pytest

SCRIPT = """
import sys

import numpy as np
from numba import njit

from gradtui.engine import cell_vector
from gradtui.engine.cell_vector import cell_forward, grad_accumulate

assert not cell_vector.VECTOR_UNITS, "a generic x86-64 has no AVX2: the callers must take their BLAS paths"
cell_vector.ACCUMULATORS = int(sys.argv[1])  # before anything compiles: the codegen reads it


@njit
def forward(rows, n, init, h, w_hh, out_h, out_d, sums, alive):
    cell_forward(rows, n, init, 0, 0, h, 0, 0, w_hh, h, 0, n, w_hh, out_h, 0, out_d, 0, True, 0.05, sums, alive)


@njit
def accumulate(m, n, k, a, b, c):
    grad_accumulate(m, n, k, a, 0, b, 0, c)


rng = np.random.default_rng(0)
for n in (16, 48, 64):
    for rows in (1, 7, 9, 13):  # 9: with 3 vectors a row, 5-row blocks leave 4 (once skipped)
        init = rng.normal(0, 1, n).astype(np.float32)
        h = rng.uniform(-1, 1, (rows, n)).astype(np.float32)
        w_hh = rng.normal(0, 3 / np.sqrt(n), (n, n)).astype(np.float32)
        h[0, 0] = np.nan  # through the tanh's clamps: row 0's every unit is NaN
        out_h, out_d = np.zeros((rows, n), np.float32), np.zeros((rows, n), np.float32)
        forward(rows, n, init, h, w_hh, out_h, out_d, np.zeros(3), np.zeros(n, np.uint8))
        expected = np.tanh(init + h.astype(np.float64) @ w_hh)
        np.testing.assert_allclose(out_h[1:], expected[1:], rtol=1e-5, atol=1e-6)
        assert np.isnan(out_h[0]).all()
        k = 29
        a, b = rng.normal(0, 1, (k, rows)).astype(np.float32), rng.normal(0, 1, (k, n)).astype(np.float32)
        c = rng.normal(0, 1, (rows, n)).astype(np.float32)
        expected = c.astype(np.float64) + a.astype(np.float64).T @ b
        accumulate(rows, n, k, a, b, c)
        np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-4)
print("compiled and matched")
"""


@pytest.mark.parametrize("accumulators", [4, 16])
def test_intrinsics_compile_and_compute_for_a_generic_x86_64(tmp_path, accumulators):
    """Numba compiling for a generic x86-64 (SSE2 only) in a fresh process and cache: the tanh's
    clamps, the fused multiply-adds and the reductions all lower, every row is
    computed at 1, 3 and 4 vectors a row (rows 1, 7, 9, 13), and NaN passes through."""
    env = dict(os.environ, NUMBA_CPU_NAME="generic", XDG_CACHE_HOME=str(tmp_path))
    env.pop("NUMBA_CPU_FEATURES", None)
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(accumulators)], capture_output=True, text=True,
                       timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "compiled and matched" in r.stdout
