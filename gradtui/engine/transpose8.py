"""An 8 x 8 block transpose in vector registers, callable from kernels.

A transpose written as a Numba loop moves one element per load and store, about a cycle
each: 1.1 us for a 64 x 64 float32 matrix, a fifth of the product it feeds. ``transpose8``
loads the block's 8 rows as 8-wide vectors and rearranges them with three rounds of
shuffles, the textbook network LLVM lowers to unpack, shuffle and lane-permute
instructions, then stores the 8 columns as rows of the destination:

    round 1: pairs of rows (0,1), (2,3), ... interleaved element by element within each 4-wide half
    round 2: pairs of round-1 results interleaved two elements at a time
    round 3: the 4-wide halves of results 4 apart joined: column j of the block

Offsets and leading dimensions are in elements and not checked: callers pass blocks that
lie inside their arrays (gradtui.engine.blocks.transpose_into).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

BLOCK = 8
_ROUND1 = ((0, 8, 1, 9, 4, 12, 5, 13), (2, 10, 3, 11, 6, 14, 7, 15))
_ROUND2 = ((0, 1, 8, 9, 4, 5, 12, 13), (2, 3, 10, 11, 6, 7, 14, 15))
_ROUND3 = ((0, 1, 2, 3, 8, 9, 10, 11), (4, 5, 6, 7, 12, 13, 14, 15))


def _shuffle_pairs(builder, left, right, masks):
    """For each (a, b) of ``left`` x ``right`` pairs, both shuffles of ``masks``."""
    i32 = ir.IntType(32)
    consts = [ir.Constant(ir.VectorType(i32, BLOCK), [ir.Constant(i32, i) for i in mask]) for mask in masks]
    return [builder.shuffle_vector(a, b, mask) for a, b in zip(left, right) for mask in consts]


def transpose_rows(builder, rows):
    """The 8 columns, in order, of the 8 x 8 block whose rows are the 8-wide vectors ``rows``."""
    r1 = _shuffle_pairs(builder, rows[0::2], rows[1::2], _ROUND1)  # t0..t7
    r2 = _shuffle_pairs(builder, [r1[0], r1[1], r1[4], r1[5]], [r1[2], r1[3], r1[6], r1[7]], _ROUND2)
    # r2: u0, u1 (from t0, t2), u2, u3 (t1, t3), u4, u5 (t4, t6), u6, u7 (t5, t7)
    cols = _shuffle_pairs(builder, r2[0:4], r2[4:8], _ROUND3)
    # cols: (u0,u4) -> columns 0, 4; (u1,u5) -> 1, 5; (u2,u6) -> 2, 6; (u3,u7) -> 3, 7
    ordered = [None] * BLOCK
    for col, j in zip(cols, (0, 4, 1, 5, 2, 6, 3, 7)):
        ordered[j] = col
    return ordered


@intrinsic
def transpose8(typingctx, src, src_off, lds, dst, dst_off, ldd):
    """dst[j, i] = src[i, j] for the 8 x 8 blocks starting at flat offsets ``src_off`` (row stride
    ``lds``) of ``src`` and ``dst_off`` (row stride ``ldd``) of ``dst``."""
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array) and src.dtype == dst.dtype
            and src.dtype in (types.float32, types.float64)):
        return None
    sig = types.none(src, src_off, lds, dst, dst_off, ldd)

    def codegen(context, builder, signature, args):
        s_arr, s_off, s_ld, d_arr, d_off, d_ld = args
        argtys = signature.args
        elem = context.get_value_type(argtys[0].dtype)
        vec = ir.VectorType(elem, BLOCK)
        align = argtys[0].dtype.bitwidth // 8

        def base(array_type, array, offset, offset_type):
            data = context.make_array(array_type)(context, builder, array).data
            return builder.gep(data, [context.cast(builder, offset, offset_type, types.intp)])

        def row(start, ld, ld_type, k):
            step = builder.mul(context.cast(builder, ld, ld_type, types.intp), context.get_constant(types.intp, k))
            return builder.bitcast(builder.gep(start, [step]), vec.as_pointer())

        src0 = base(argtys[0], s_arr, s_off, argtys[1])
        dst0 = base(argtys[3], d_arr, d_off, argtys[4])
        rows = [builder.load(row(src0, s_ld, argtys[2], k), align=align) for k in range(BLOCK)]
        for j, col in enumerate(transpose_rows(builder, rows)):
            builder.store(col, row(dst0, d_ld, argtys[5], j), align=align)
        return context.get_dummy_value()

    return sig, codegen
