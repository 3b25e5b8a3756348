"""One attention head's small products in vector registers, callable from kernels.

At 16 x 16 x 16 a BLAS call spends most of its time outside the arithmetic (argument checks,
packing, a kernel tuned for large blocks), and its small-matrix path takes the forms with a
transposed second operand (Q K^T, dO V^T) about 2x slower than P V. ``head_nn``, ``head_nt``
and ``head_tn`` compute, on blocks inside larger row-major arrays as
gradtui.engine.strided_gemm.gemm takes them (flat offset, row stride),

    C = op(A) op(B),   C[i, :] = sum_k op(A)[i, k] op(B)[k, :]

for float32 with m = 16 and n, k each 8 or 16 (T = 16 and a head size of 16 or 8): row i of
C is n / 8 8-wide accumulators, each step k adds the broadcast op(A)[i, k] times the 8-wide
parts of op(B)'s row k (a fused multiply-add), fully unrolled over k, 8 accumulators at a
time (4 rows when n = 16; with the rows of op(B) and a broadcast, 11 of 16 vector registers).
A transposed A costs nothing (the broadcast reads A[k, i]); a transposed B is first turned
into rows of B^T on the stack, 8 x 8 blocks at a time with gradtui.engine.transpose8's
shuffle network. ``head_softmax_grad`` is ``head_nt``
that finishes each row of dP = dO V^T in registers into the softmax's backward,
dS = P * (dP - rowsum(P * dP)) scale. Any other size or float64 goes to BLAS
(``emit_gemm_call``), so float64 results are BLAS's own. Offsets and strides are not
checked: callers pass blocks that lie inside their arrays, C overlapping neither A nor B
(rows of C are stored while later rows still read A, as BLAS also assumes).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.linalg import ensure_blas

from gradtui.engine.strided_gemm import block_pointer, emit_gemm_call
from gradtui.engine.transpose8 import transpose_rows

SIZE = 16  # rows of C on the vector path (the sequence length T), and the largest n and k
LANES = 8  # float32 lanes per vector: two vectors per row of 16 (transpose_rows works on 8 x 8)
ACCUMULATORS = 8  # rows of C at once: 4 when n = 16, 8 when n = 8
SHAPES = ((16, 16), (16, 8), (8, 16), (8, 8))  # (n, k) with a vector path, m = 16


def _emit_vector_product(context, builder, trans_a, trans_b, n, k, a0, lda, b0, ldb, c0, ldc, epilogue=None):
    """C = op(A) op(B) for float32 blocks, C (16, n), op(A) (16, k), at float pointers a0, b0,
    c0 (strides intp), n and k 8 or 16; each row of C's vectors through ``epilogue(row,
    vectors)`` first when it is given."""
    f32 = ir.FloatType()
    vec = ir.VectorType(f32, LANES)
    intp = context.get_value_type(types.intp)
    fmuladd = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3), "llvm.fmuladd.v8f32")
    undef = ir.Constant(vec, ir.Undefined)
    zero_index = ir.Constant(ir.IntType(32), 0)
    splat_mask = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [zero_index] * LANES)

    def at(base, ld, row, col):
        return builder.gep(base, [builder.add(builder.mul(ld, ir.Constant(intp, row)), ir.Constant(intp, col))])

    def load_vec(base, ld, row, col):
        return builder.load(builder.bitcast(at(base, ld, row, col), vec.as_pointer()), align=4)

    if trans_b:  # rows of B^T (k, n) into a 16 x 16 stack buffer
        scratch = cgutils.alloca_once(builder, ir.ArrayType(f32, SIZE * SIZE))
        scratch.align = 32
        bt = builder.bitcast(scratch, f32.as_pointer())
        stride = ir.Constant(intp, SIZE)
        for r in range(0, n, LANES):
            for c in range(0, k, LANES):
                cols = transpose_rows(builder, [load_vec(b0, ldb, r + i, c) for i in range(LANES)])
                for j, col in enumerate(cols):
                    builder.store(col, builder.bitcast(at(bt, stride, c + j, r), vec.as_pointer()), align=32)
        b0, ldb = bt, stride
    halves = range(0, n, LANES)
    rows_at_once = ACCUMULATORS // len(halves)
    for i0 in range(0, SIZE, rows_at_once):
        acc = [[ir.Constant(vec, [ir.Constant(f32, 0.0)] * LANES) for _ in halves] for _ in range(rows_at_once)]
        for kk in range(k):
            b_row = [load_vec(b0, ldb, kk, h) for h in halves]
            for r in range(rows_at_once):
                i = i0 + r
                scalar = builder.load(at(a0, lda, kk, i) if trans_a else at(a0, lda, i, kk), align=4)
                splat = builder.shuffle_vector(builder.insert_element(undef, scalar, zero_index), undef, splat_mask)
                acc[r] = [builder.call(fmuladd, [splat, b, s]) for b, s in zip(b_row, acc[r])]
        for r in range(rows_at_once):
            if epilogue is not None:
                acc[r] = epilogue(i0 + r, acc[r])
            for h, value in zip(halves, acc[r]):
                builder.store(value, builder.bitcast(at(c0, ldc, i0 + r, h), vec.as_pointer()), align=4)


def _across_lanes_sum(builder, v):
    """The sum of v's 8 lanes, in every lane (three rounds of shuffles and adds)."""
    i32 = ir.IntType(32)
    for half in (4, 2, 1):
        mask = ir.Constant(ir.VectorType(i32, LANES), [ir.Constant(i32, j ^ half) for j in range(LANES)])
        v = builder.fadd(v, builder.shuffle_vector(v, v, mask))
    return v


def _emit_head_product(context, builder, dtype, trans_a, trans_b, args, ty, shapes, epilogue=None):
    """Emit C = op(A) op(B) for the first 12 intrinsic arguments (m, n, k, then array, offset,
    stride for A, B, C): the vector path for float32 with m = 16 and (n, k) in ``shapes``, with
    ``epilogue(row, values)`` (if given) replacing each row of C before it is stored; BLAS
    otherwise. Returns an i1, true when the vector path ran."""

    def as_intp(i):
        return context.cast(builder, args[i], ty[i], types.intp)

    sizes = [as_intp(i) for i in range(3)]
    strides = [as_intp(i) for i in (5, 8, 11)]
    pointers = [block_pointer(context, builder, ty[i], args[i], args[i + 1], ty[i + 1]) for i in (3, 6, 9)]

    def blas():
        emit_gemm_call(context, builder, dtype, trans_a, trans_b, *sizes, pointers[0], strides[0],
                       pointers[1], strides[1], context.get_constant(dtype, 0.0), pointers[2], strides[2])

    if dtype != types.float32:
        blas()
        return cgutils.false_bit
    intp = sizes[0].type
    shape = builder.add(builder.mul(sizes[1], ir.Constant(intp, 2 * SIZE)), sizes[2])
    fits = builder.and_(builder.icmp_signed("==", sizes[0], ir.Constant(intp, SIZE)),
                        builder.icmp_unsigned("<", sizes[2], ir.Constant(intp, 2 * SIZE)))
    shape = builder.select(fits, shape, ir.Constant(intp, -1))
    blas_block = builder.append_basic_block("head_product_blas")
    end = builder.append_basic_block("head_product_end")
    switch = builder.switch(shape, blas_block)
    arrivals = []
    for n_, k_ in shapes:
        block = builder.append_basic_block(f"head_product_{n_}_{k_}")
        switch.add_case(ir.Constant(intp, n_ * 2 * SIZE + k_), block)
        builder.position_at_end(block)
        _emit_vector_product(context, builder, trans_a, trans_b, n_, k_, pointers[0], strides[0],
                             pointers[1], strides[1], pointers[2], strides[2], epilogue)
        arrivals.append((cgutils.true_bit, builder.basic_block))
        builder.branch(end)
    builder.position_at_end(blas_block)
    blas()
    arrivals.append((cgutils.false_bit, builder.basic_block))
    builder.branch(end)
    builder.position_at_end(end)
    vectorised = builder.phi(ir.IntType(1))
    for value, block in arrivals:
        vectorised.add_incoming(value, block)
    return vectorised


def _float_arrays(*arrays):
    return all(isinstance(x, types.Array) for x in arrays) and len({x.dtype for x in arrays}) == 1 \
        and arrays[0].dtype in (types.float32, types.float64)


def _head_product(trans_a: bool, trans_b: bool):
    """The intrinsic for C = op(A) op(B) with these transpose flags (see the module docstring)."""

    @intrinsic
    def product(typingctx, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc):
        if not _float_arrays(a, b, c):
            return None
        ensure_blas()

        def codegen(context, builder, signature, args):
            _emit_head_product(context, builder, a.dtype, trans_a, trans_b, args, signature.args, SHAPES)
            return context.get_dummy_value()

        return types.none(m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc), codegen

    return product


head_nn = _head_product(False, False)  # C = A B
head_nt = _head_product(False, True)  # C = A B^T
head_tn = _head_product(True, False)  # C = A^T B


@intrinsic
def head_softmax_grad(typingctx, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc, p, p_off, ldp, scale):
    """C = dS = P * (dP - rowsum(P * dP)) scale with dP = A B^T (the attention's backward through
    its softmax, P at ``p[p_off:]`` with row stride ldp), each row of dP finished while in
    registers; returns True. Off the vector path (float64, or not 16 x 16) it computes only
    C = dP = A B^T (BLAS) and returns False: the caller then applies the softmax's backward."""
    if not _float_arrays(a, b, c, p):
        return None
    ensure_blas()

    def codegen(context, builder, signature, args):
        ty = signature.args
        epilogue = None
        if a.dtype == types.float32:
            vec = ir.VectorType(ir.FloatType(), LANES)
            p0 = block_pointer(context, builder, ty[12], args[12], args[13], ty[13])
            ldp_ = context.cast(builder, args[14], ty[14], types.intp)
            s = context.cast(builder, args[15], ty[15], types.float32)
            s = builder.insert_element(ir.Constant(vec, ir.Undefined), s, ir.Constant(ir.IntType(32), 0))
            scale_ = builder.shuffle_vector(s, s, ir.Constant(ir.VectorType(ir.IntType(32), LANES),
                                                              [ir.Constant(ir.IntType(32), 0)] * LANES))

            def epilogue(row, dp):
                start = builder.mul(ldp_, ir.Constant(ldp_.type, row))
                pv = [builder.load(builder.bitcast(builder.gep(p0, [builder.add(start, ir.Constant(ldp_.type, h))]),
                                                   vec.as_pointer()), align=4) for h in range(0, SIZE, LANES)]
                total = _across_lanes_sum(builder, builder.fadd(builder.fmul(pv[0], dp[0]), builder.fmul(pv[1], dp[1])))
                return [builder.fmul(builder.fmul(x, builder.fsub(y, total)), scale_) for x, y in zip(pv, dp)]

        vectorised = _emit_head_product(context, builder, a.dtype, False, True, args, ty,
                                        [(n_, k_) for n_, k_ in SHAPES if n_ == SIZE], epilogue)
        return context.cast(builder, vectorised, types.boolean, types.boolean)

    return types.boolean(m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc, p, p_off, ldp, scale), codegen
