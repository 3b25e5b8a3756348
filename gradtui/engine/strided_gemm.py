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


def emit_gemm_call(context, builder, dtype, trans_a, trans_b, m, n, k, a_ptr, lda, b_ptr, ldb, beta, c_ptr, ldc):
    """Emit C = op(A) op(B) + beta C through numba_xxgemm: ``trans_a``/``trans_b`` are i1 (or
    Python bool) flags, sizes and strides intp values, pointers to the blocks' first elements,
    ``beta`` a value of ``dtype``."""
    intp = context.get_value_type(types.intp)
    char = ir.IntType(8)
    void_p = char.as_pointer()
    fnty = ir.FunctionType(ir.IntType(32), [char, char, char, intp, intp, intp, void_p, void_p, intp,
                                            void_p, intp, void_p, void_p, intp])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")

    def flag(on):
        if isinstance(on, bool):
            return ir.Constant(char, ord("t" if on else "n"))
        return builder.select(on, ir.Constant(char, ord("t")), ir.Constant(char, ord("n")))

    alpha_slot = cgutils.alloca_once_value(builder, context.get_constant(dtype, 1.0))
    beta_slot = cgutils.alloca_once_value(builder, beta)
    res = builder.call(fn, (
        ir.Constant(char, ord(get_blas_kind(dtype))), flag(trans_b), flag(trans_a), n, m, k,
        builder.bitcast(alpha_slot, void_p),
        builder.bitcast(b_ptr, void_p), ldb, builder.bitcast(a_ptr, void_p), lda,
        builder.bitcast(beta_slot, void_p), builder.bitcast(c_ptr, void_p), ldc,
    ))
    check_blas_return(context, builder, res)


def block_pointer(context, builder, array_type, array, offset, offset_type):
    """Pointer to element ``offset`` (of type ``offset_type``) of the flat data of ``array``."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [context.cast(builder, offset, offset_type, types.intp)])


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
        ty = signature.args

        def as_intp(i):
            return context.cast(builder, args[i], ty[i], types.intp)

        def flag(i):
            return context.cast(builder, args[i], ty[i], types.boolean)

        emit_gemm_call(context, builder, dtype, flag(0), flag(1), as_intp(2), as_intp(3), as_intp(4),
                       block_pointer(context, builder, ty[5], a_, ao, ty[6]), as_intp(7),
                       block_pointer(context, builder, ty[8], b_, bo, ty[9]), as_intp(10),
                       context.cast(builder, beta_, ty[11], dtype),
                       block_pointer(context, builder, ty[12], c_, co, ty[13]), as_intp(14))
        return context.get_dummy_value()

    return sig, codegen
