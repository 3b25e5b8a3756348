"""Small array kernels the MLP and recurrent kernels share: views into the flat
parameter vector, the bias broadcast, and products with a transposed weight matrix."""

from __future__ import annotations

import numpy as np

from gradtui.engine.jit import kernel
from gradtui.engine.transpose8 import BLOCK, transpose8

# At or below this many weights, D W^T is faster as a transpose into scratch plus a plain
# product than as BLAS's transposed-operand product; at 128 x 128 BLAS's own route is as fast
# as a plain product (benchmarks/transpose.py measures both).
TRANSPOSE_MAX_WEIGHTS = 96 * 96

# Sums of squares are taken in the array's precision (float32 vectorises twice as wide)
# and redone in float64 when they leave this range: a float32 square underflows below
# about 1e-19 and overflows above about 1e19, and vanishing or exploding layers are
# exactly where those values live. Inside it, each square that underflowed is below 1e-18
# of the sum, so all of a row's (or a block's) together below its length x 1e-18 of it.
SQUARES_SAFE_MIN, SQUARES_SAFE_MAX = 1e-20, 1e30


@kernel(inline="always")
def block_moments(a, lo, hi, shift, s, ss):
    """a[lo:hi] (flat) minus ``shift``: (sum, sum of squares) as float64. They are the block's
    sums ``s``, ``ss`` when ``ss`` lies in the safe range (then no |value| exceeds 1e15 and ``s``
    cannot overflow either), else recomputed in float64."""
    if SQUARES_SAFE_MIN <= ss <= SQUARES_SAFE_MAX:
        return np.float64(s), np.float64(ss)
    c = np.float64(shift)
    exact_s = 0.0
    exact_ss = 0.0
    for k in range(np.uint64(lo), np.uint64(hi)):
        v = np.float64(a[k]) - c
        exact_s += v
        exact_ss += v * v
    return exact_s, exact_ss


@kernel(inline="always")
def matrix(flat, offset, rows, cols):
    """A (rows, cols) view of the flat parameter (or gradient) vector."""
    return flat[offset : offset + rows * cols].reshape((rows, cols))


@kernel(inline="always")
def add_row(a2d, row):
    """a2d[i, j] += row[j] (a bias over a batch); an explicit loop, which LLVM vectorises,
    where Numba's broadcasting ``+=`` does not."""
    for i in range(a2d.shape[0]):
        for j in range(a2d.shape[1]):
            a2d[i, j] += row[j]


@kernel(inline="always")
def transpose_into(a, scratch):
    """a^T, written into the start of the flat ``scratch`` buffer; returns that view. Whole
    8 x 8 blocks of a C-contiguous ``a`` go through vector registers (gradtui.engine.transpose8),
    the rest element by element."""
    n, m = a.shape
    out = scratch[: n * m].reshape((m, n))
    flat = a.reshape(n * m)
    rows, cols = n - n % BLOCK, m - m % BLOCK
    for i in range(0, rows, BLOCK):
        for j in range(0, cols, BLOCK):
            transpose8(flat, i * m + j, m, scratch, j * n + i, n)
    for i in range(rows, n):
        for j in range(m):
            out[j, i] = a[i, j]
    for j in range(cols, m):
        for i in range(rows):
            out[j, i] = a[i, j]
    return out


@kernel(inline="always")
def dot_transposed(d, w, out, scratch):
    """out = d w^T. For small w, a transpose into ``scratch`` and a plain product: BLAS's
    transposed-operand kernel is about 1.5x slower than its plain one at 64 x 64."""
    if w.size <= TRANSPOSE_MAX_WEIGHTS:
        np.dot(d, transpose_into(w, scratch), out)
    else:
        np.dot(d, w.T, out)
