"""A BLAS matrix product on blocks inside larger row-major arrays, callable from kernels.

Numba's ``np.dot`` takes whole contiguous arrays, so a product of one attention head's
16 x 16 blocks needed a copy of each block in and out. ``gemm`` passes a block as BLAS does:
a start (flat element offset into the array) and a leading dimension (the row stride of
the array it lives in). In row-major terms it computes

    C = op(A) op(B) + beta C,  op(X) = X^T when its flag is set,

with C (m, n) at ``c[c_off:]`` (row stride ldc), op(A) (m, k) and op(B) (k, n); A is stored
(m, k), or (k, m) when transposed, from ``a[a_off:]`` with row stride lda (B likewise).
It calls the same BLAS (SciPy's, through Numba's ``numba_xxgemm``) as ``np.dot``: a
row-major C is the column-major C^T = op(B)^T op(A)^T, so the operands swap.
Offsets and strides are not checked: callers pass blocks that lie inside their arrays.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.linalg import check_blas_return, ensure_blas, get_blas_kind


def _block_pointer(context, builder, array_type, array, offset):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [offset]), ir.IntType(8).as_pointer())


@intrinsic
def gemm(typingctx, trans_a, trans_b, m, n, k, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc):
    """C = op(A) op(B) + beta C on blocks of row-major arrays a, b, c (see the module docstring)."""
    if not (isinstance(a, types.Array) and a.dtype == b.dtype == c.dtype and a.dtype in (types.float32, types.float64)):
        return None
    ensure_blas()  # SciPy's BLAS, which numba_xxgemm calls, loaded when a kernel first needs it
    dtype = a.dtype
    sig = types.none(trans_a, trans_b, m, n, k, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc)

    def codegen(context, builder, signature, args):
        ta, tb, m_, n_, k_, a_, ao, lda_, b_, bo, ldb_, beta_, c_, co, ldc_ = args
        argtys = signature.args
        intp = context.get_value_type(types.intp)
        char = ir.IntType(8)
        void_p = char.as_pointer()
        fnty = ir.FunctionType(ir.IntType(32), [char, char, char, intp, intp, intp, void_p, void_p, intp,
                                                void_p, intp, void_p, void_p, intp])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")

        def as_intp(value, ty):
            return context.cast(builder, value, ty, types.intp)

        def flag(value, ty):
            on = context.cast(builder, value, ty, types.boolean)
            return builder.select(on, ir.Constant(char, ord("t")), ir.Constant(char, ord("n")))

        alpha_slot = cgutils.alloca_once_value(builder, context.get_constant(dtype, 1.0))
        beta_slot = cgutils.alloca_once_value(builder, context.cast(builder, beta_, argtys[11], dtype))
        res = builder.call(fn, (
            ir.Constant(char, ord(get_blas_kind(dtype))), flag(tb, argtys[1]), flag(ta, argtys[0]),
            as_intp(n_, argtys[3]), as_intp(m_, argtys[2]), as_intp(k_, argtys[4]),
            builder.bitcast(alpha_slot, void_p),
            _block_pointer(context, builder, argtys[8], b_, as_intp(bo, argtys[9])), as_intp(ldb_, argtys[10]),
            _block_pointer(context, builder, argtys[5], a_, as_intp(ao, argtys[6])), as_intp(lda_, argtys[7]),
            builder.bitcast(beta_slot, void_p),
            _block_pointer(context, builder, argtys[12], c_, as_intp(co, argtys[13])), as_intp(ldc_, argtys[14]),
        ))
        check_blas_return(context, builder, res)
        return context.get_dummy_value()

    return sig, codegen
