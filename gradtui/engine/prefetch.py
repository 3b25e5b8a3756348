"""Software prefetch of an array's memory into the core's L2 cache, callable from kernels.

A recurrent backward pass reads the step's gates and cells in reverse time order: at
hidden 64, T 100, batch 32 the LSTM's gates are 3.3 MB, beyond this machine's 1 MB L2,
so each step's 32 KB block comes from L3 or memory, and the gate loop's loads stalled on
it (perf: most of that loop's samples sat on its loads). ``prefetch_lines`` asks for the
previous step's blocks before the current step's matrix products, which take long enough
for them to arrive (1-2.5% of the LSTM step in side-by-side timings; prefetching the
forward pass's next blocks for writing measured no faster). A prefetch is a hint: it never
faults and changes no value.
"""

from __future__ import annotations

from llvmlite import binding, ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from gradtui.engine.jit import kernel

LINE_BYTES = 64
# The intrinsic's name carries its pointer type: ``p0`` for opaque pointers (always from LLVM 17),
# ``p0i8`` for the typed i8* of older LLVMs.
_OPAQUE = binding.llvm_version_info[0] >= 17 or str(ir.IntType(8).as_pointer()) == "ptr"
_PREFETCH = "llvm.prefetch.p0" if _OPAQUE else "llvm.prefetch.p0i8"


@intrinsic
def _prefetch(typingctx, a, offset):
    """llvm.prefetch of element ``offset`` of the flat array ``a``: for reading, into L2
    (locality 2), data cache."""
    if not (isinstance(a, types.Array) and a.ndim == 1 and isinstance(offset, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = builder.bitcast(builder.gep(arr.data, [index]), ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer(), i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _PREFETCH)
        builder.call(fn, [ptr, i32(0), i32(2), i32(1)])
        return context.get_dummy_value()

    return types.none(a, offset), codegen


@kernel(inline="always")
def prefetch_lines(flat):
    """Prefetch every cache line of the contiguous 1-D array ``flat``."""
    step = max(LINE_BYTES // flat.itemsize, 1)
    for k in range(0, flat.shape[0], step):
        _prefetch(flat, k)
