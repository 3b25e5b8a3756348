"""The vector intrinsics on processors without AVX-512: their IR must compile for any target
(an x86-only AVX-512 intrinsic made LLVM abort the process on an AVX2 machine), and only
processors with AVX2 take the vector paths."""

import os
import subprocess
import sys

SCRIPT = """
import numpy as np
from numba import njit
from gradtui.engine import cell_vector
from gradtui.engine.cell_vector import cell_forward

assert not cell_vector.VECTOR_UNITS, "a generic x86-64 has no AVX2: the callers must take their BLAS paths"


@njit
def forward(rows, n, init, h, w_hh, out_h, out_d, sums, alive):
    cell_forward(rows, n, init, 0, 0, h, 0, 0, w_hh, h, 0, n, w_hh, out_h, 0, out_d, 0, True, 0.05, sums, alive)


rows, n = 5, 48
rng = np.random.default_rng(0)
init = rng.normal(0, 1, n).astype(np.float32)
h = rng.uniform(-1, 1, (rows, n)).astype(np.float32)
w_hh = rng.normal(0, 3 / np.sqrt(n), (n, n)).astype(np.float32)
h[0, 0] = np.nan  # through the tanh's clamps: row 0's every unit is NaN
out_h, out_d = np.zeros((rows, n), np.float32), np.zeros((rows, n), np.float32)
forward(rows, n, init, h, w_hh, out_h, out_d, np.zeros(3), np.zeros(n, np.uint8))
expected = np.tanh(init + h.astype(np.float64) @ w_hh)
np.testing.assert_allclose(out_h[1:], expected[1:], rtol=1e-5, atol=1e-6)
assert np.isnan(out_h[0]).all()
print("compiled and matched")
"""


def test_intrinsics_compile_and_compute_for_a_generic_x86_64(tmp_path):
    """Numba compiling for a generic x86-64 (SSE2 only) in a fresh process and cache: the tanh's
    clamps, the fused multiply-adds and the reductions all lower, and NaN passes through."""
    env = dict(os.environ, NUMBA_CPU_NAME="generic", XDG_CACHE_HOME=str(tmp_path))
    env.pop("NUMBA_CPU_FEATURES", None)
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "compiled and matched" in r.stdout

