"""The attention softmax of one 16 x 16 float32 block in vector registers, callable from kernels.

Numba compiles gradtui.engine.transformer_ops._softmax_rows to scalar code (its loops run
over a runtime width, with a float64 entropy beside them), about 6 ns per score. Here each
row of 16 scores is two 8-wide vectors, and every step is a vector operation:

    top = max_j s_j (pairs of lanes compared in three rounds of shuffles, so every lane holds it)
    x = scale (s - top),  e = exp(x),  total = sum e,  weighted = sum e x,  P = e / total

with exp gradtui.engine.exp32's Cephes polynomial on all 8 lanes at once (the same constants
and order of operations) and the sums in the same three shuffle rounds. The row's entropy
-sum_j P_j ln P_j = ln(total) - weighted / total is summed in float64 as in _softmax_rows,
the 16 logarithms taken as one of the rows' product (below 16^16).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from gradtui.engine.exp32 import LN2_HI, LN2_LO, LOG2E, POLY, UNDERFLOW
from gradtui.engine.jit import OPTIONS

SIZE = 16
LANES = 8


def _fn(builder, name, ty, arity):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty] * arity), name)


def _splat(vec, value):
    return ir.Constant(vec, [ir.Constant(vec.element, value)] * LANES)


def _across_lanes(builder, v, combine):
    """``combine`` over the 8 lanes of v, the result in every lane (three shuffle rounds)."""
    i32 = ir.IntType(32)
    for half in (4, 2, 1):
        mask = ir.Constant(ir.VectorType(i32, LANES), [ir.Constant(i32, j ^ half) for j in range(LANES)])
        v = combine(v, builder.shuffle_vector(v, v, mask))
    return v


def _exp(builder, x):
    """exp of every lane of x <= 0 (gradtui.engine.exp32's formula, 0 below UNDERFLOW)."""
    vec = x.type
    fmuladd = _fn(builder, "llvm.fmuladd.v8f32", vec, 3)
    floor = _fn(builder, "llvm.floor.v8f32", vec, 1)
    low = builder.fcmp_ordered("<", x, _splat(vec, UNDERFLOW))
    x = builder.select(low, _splat(vec, UNDERFLOW), x)
    n = builder.call(floor, [builder.fadd(builder.fmul(x, _splat(vec, LOG2E)), _splat(vec, 0.5))])
    r = builder.fsub(builder.fsub(x, builder.fmul(n, _splat(vec, LN2_HI))), builder.fmul(n, _splat(vec, LN2_LO)))
    p = _splat(vec, POLY[0])
    for coefficient in POLY[1:]:
        p = builder.call(fmuladd, [p, r, _splat(vec, coefficient)])
    ivec = ir.VectorType(ir.IntType(32), LANES)
    bits = builder.shl(builder.add(builder.fptosi(n, ivec), ir.Constant(ivec, [ir.Constant(ir.IntType(32), 127)] * LANES)),
                       ir.Constant(ivec, [ir.Constant(ir.IntType(32), 23)] * LANES))
    y = builder.fmul(builder.fadd(builder.fadd(builder.fmul(builder.fmul(p, r), r), r), _splat(vec, 1.0)),
                     builder.bitcast(bits, vec))
    return builder.select(low, _splat(vec, 0.0), y)


@intrinsic
def _softmax16(typingctx, S, scale):
    """Each row of the C-contiguous 16 x 16 float32 S <- softmax(scale row); returns the rows'
    summed entropy (float64)."""
    if not (isinstance(S, types.Array) and S.ndim == 2 and S.layout == "C" and S.dtype == types.float32):
        return None

    def codegen(context, builder, signature, args):
        f32, f64 = ir.FloatType(), ir.DoubleType()
        vec = ir.VectorType(f32, LANES)
        maxnum = _fn(builder, "llvm.maxnum.v8f32", vec, 2)
        log = _fn(builder, "llvm.log.f64", f64, 1)
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        scale_ = builder.insert_element(ir.Constant(vec, ir.Undefined),
                                        context.cast(builder, args[1], signature.args[1], types.float32),
                                        ir.Constant(ir.IntType(32), 0))
        scale_ = builder.shuffle_vector(scale_, scale_, ir.Constant(ir.VectorType(ir.IntType(32), LANES),
                                                                   [ir.Constant(ir.IntType(32), 0)] * LANES))
        first = ir.Constant(ir.IntType(32), 0)
        entropy, product = ir.Constant(f64, 0.0), ir.Constant(f64, 1.0)
        for i in range(SIZE):
            ptrs = [builder.bitcast(builder.gep(data, [ir.Constant(ir.IntType(64), i * SIZE + h)]), vec.as_pointer())
                    for h in (0, LANES)]
            s0, s1 = [builder.load(ptr, align=4) for ptr in ptrs]
            top = _across_lanes(builder, builder.call(maxnum, [s0, s1]), lambda a, b: builder.call(maxnum, [a, b]))
            x0, x1 = [builder.fmul(builder.fsub(s, top), scale_) for s in (s0, s1)]
            e0, e1 = _exp(builder, x0), _exp(builder, x1)
            total = _across_lanes(builder, builder.fadd(e0, e1), builder.fadd)
            weighted = _across_lanes(builder, builder.fadd(builder.fmul(e0, x0), builder.fmul(e1, x1)), builder.fadd)
            inv = builder.fdiv(_splat(vec, 1.0), total)
            for ptr, e in zip(ptrs, (e0, e1)):
                builder.store(builder.fmul(e, inv), ptr, align=4)
            total64 = builder.fpext(builder.extract_element(total, first), f64)
            weighted64 = builder.fpext(builder.extract_element(weighted, first), f64)
            entropy = builder.fsub(entropy, builder.fdiv(weighted64, total64))
            product = builder.fmul(product, total64)
        return builder.fadd(entropy, builder.call(log, [product]))

    return types.float64(S, scale), codegen


def softmax_block(S, scale):
    """(True, summed entropy) after the vector softmax of a 16 x 16 float32 block S, else
    (False, 0.0) and S untouched (callable from kernels only)."""
    return False, 0.0


@overload(softmax_block, jit_options={k: v for k, v in OPTIONS.items() if k != "cache"}, inline="always")
def _softmax_block(S, scale):
    if not (isinstance(S, types.Array) and S.ndim == 2 and S.layout == "C" and S.dtype == types.float32):
        return lambda S, scale: (False, 0.0)

    def vector_softmax(S, scale):
        if S.shape[0] != SIZE or S.shape[1] != SIZE:
            return False, 0.0
        return True, _softmax16(S, scale)
    return vector_softmax
