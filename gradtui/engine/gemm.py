"""C = alpha op(A) op(B) + beta C as one BLAS call from a kernel, with no temporary.

``np.dot(a, b, out)`` inside a kernel always overwrites ``out`` (beta = 0), so a sum of
products needs a temporary and an extra pass, and it copies any operand that is not
contiguous. ``gemm`` calls the same BLAS (SciPy's, through Numba's ``numba_xxgemm``, as
``np.dot`` does) with the transposes as flags and beta given, on any 2-D array whose rows
are contiguous (a row-strided view such as ``ga[:, 2 * H:]`` included).

Row-major C (m, n) = op(A) op(B) is the column-major product C^T = op(B)^T op(A)^T, so the
Fortran routine gets B before A, each with its own transpose flag and its row stride as
leading dimension.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic
from numba.np.linalg import ensure_blas, get_blas_kind

from gradtui.engine.jit import kernel

_CHAR = ir.IntType(8)
_VOID_P = ir.IntType(8).as_pointer()


@intrinsic
def _xxgemm(typingctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """The Fortran-order ?gemm on raw arguments: flags as booleans, arrays by their data pointer."""
    dtype = c.dtype

    def codegen(context, builder, sig, args):
        ensure_blas()
        ta, tb, m_, n_, k_, alpha_, a_, lda_, b_, ldb_, beta_, c_, ldc_ = args
        intp = context.get_value_type(types.intp)
        fnty = ir.FunctionType(ir.IntType(32), [_CHAR, _CHAR, _CHAR, intp, intp, intp, _VOID_P, _VOID_P, intp,
                                                _VOID_P, intp, _VOID_P, _VOID_P, intp])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")

        def flag(value):
            return builder.select(value, ir.Constant(_CHAR, ord("t")), ir.Constant(_CHAR, ord("n")))

        def data(ty, value):
            return builder.bitcast(context.make_array(ty)(context, builder, value).data, _VOID_P)

        def slot(ty, value):
            value = context.cast(builder, value, ty, dtype)
            return builder.bitcast(cgutils.alloca_once_value(builder, value), _VOID_P)

        kind = ir.Constant(_CHAR, ord(get_blas_kind(dtype)))
        builder.call(fn, (kind, flag(ta), flag(tb), m_, n_, k_, slot(sig.args[5], alpha_), data(sig.args[6], a_),
                          lda_, data(sig.args[8], b_), ldb_, slot(sig.args[10], beta_), data(sig.args[11], c_),
                          ldc_))
        return context.get_dummy_value()

    return types.void(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), codegen


@kernel(inline="always")
def _leading(x):
    """Row stride of a 2-D array in elements (its rows must be contiguous)."""
    return max(x.strides[0] // x.itemsize, x.shape[1], 1)


@kernel
def gemm(A, B, C, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
    """C = alpha op(A) op(B) + beta C, op(X) = X.T when its flag is set; one BLAS call.

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
    _xxgemm(trans_b, trans_a, n, m, k, alpha, B, _leading(B), A, _leading(A), beta, C, _leading(C))
