"""C = op(A) op(B) + beta C on whole 2-D arrays or row-strided views, as one BLAS call from a kernel.

``np.dot(a, b, out)`` inside a kernel always overwrites ``out`` (beta = 0), so a sum of
products needs a temporary and an extra pass, and it copies any operand that is not
contiguous. ``gemm`` hands views (``ga[:, 2 * H:]`` included) to gradtui.engine.strided_gemm,
which calls the same BLAS with the transposes as flags and beta given; each view's row
stride is its leading dimension.
"""

from __future__ import annotations

from gradtui.engine.jit import kernel
from gradtui.engine.strided_gemm import gemm as strided_gemm


@kernel(inline="always")
def _leading(x):
    """Row stride of a 2-D array in elements (its rows must be contiguous)."""
    return max(x.strides[0] // x.itemsize, x.shape[1], 1)


@kernel
def gemm(A, B, C, trans_a=False, trans_b=False, beta=0.0):
    """C = op(A) op(B) + beta C, op(X) = X.T when its flag is set; one BLAS call.

    Every operand's rows must be contiguous (unit stride along axis 1); shapes are checked.
    """
    m = A.shape[1] if trans_a else A.shape[0]
    k = A.shape[0] if trans_a else A.shape[1]
    kb = B.shape[1] if trans_b else B.shape[0]
    n = B.shape[0] if trans_b else B.shape[1]
    if kb != k or C.shape[0] != m or C.shape[1] != n:
        raise ValueError("gemm: shapes do not match")
    if (A.strides[1] != A.itemsize and A.shape[1] > 1) or (B.strides[1] != B.itemsize and B.shape[1] > 1) \
            or (C.strides[1] != C.itemsize and C.shape[1] > 1):
        raise ValueError("gemm: rows must be contiguous")
    if m == 0 or n == 0:
        return
    if k == 0:
        if beta == 0.0:
            C[:] = 0.0
        else:
            C[:] *= beta
        return
    strided_gemm(trans_a, trans_b, m, n, k, A, 0, _leading(A), B, 0, _leading(B), beta, C, 0, _leading(C))
