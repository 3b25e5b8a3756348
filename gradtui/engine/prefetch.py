"""Software prefetch from kernels: ask the CPU to start loading a range of an array into cache.

The attention's per-head products read and write 16 x 16 blocks scattered over rows of
the projection's output (a row stride of 3d), written long before in the step: each block's
rows are separate cache lines that the hardware prefetcher does not foresee, so the small
products waited on memory. ``prefetch_range`` issues one ``llvm.prefetch`` per 64-byte line
of a contiguous range (for data kept in all cache levels; a hint, never a fault).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from gradtui.engine.jit import kernel

LINE_BYTES = 64


@intrinsic
def _prefetch(typingctx, a, offset):
    """Prefetch the cache line holding the flat element a[offset] (no bounds check)."""
    if not isinstance(a, types.Array):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0")
        read, keep_everywhere, data_cache = (ir.Constant(i32, v) for v in (0, 3, 1))
        builder.call(fn, [builder.bitcast(builder.gep(data, [index]), i8p), read, keep_everywhere, data_cache])
        return context.get_dummy_value()

    return types.none(a, offset), codegen


@kernel(inline="always")
def prefetch_range(a, start, count):
    """Prefetch the flat elements a[start : start + count] of a C-contiguous array (clipped to it)."""
    step = max(LINE_BYTES // a.itemsize, 1)
    stop = min(start + count, a.size)
    for i in range(max(start, 0), stop, step):
        _prefetch(a, i)
    if stop > start:
        _prefetch(a, stop - 1)  # the last line, when start is not at a line's start
