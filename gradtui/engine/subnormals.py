"""Flush-to-zero for float32 training: subnormal numbers count as zero.

A float32 below 1.2e-38 is subnormal, and x86 processors take a slow microcode path for
every operation that reads or produces one. Vanishing gradients live exactly there (on the
default preset, a 20-layer sigmoid net, the deepest errors are ~1e-35; benchmarks/bench_mlp.py
prints what the flush gains on it). The
weights cannot move by such amounts in float32 anyway, and the per-layer norms agree with
float64 to 1e-3 (tests/test_subnormals.py); GPUs flush the same way.

``flushed(dtype)`` sets the FTZ and DAZ bits of this thread's MXCSR register around a block
of float32 kernel calls and restores the register afterwards, so nothing outside the block
changes. BLAS follows when it runs in the calling thread, as with the single BLAS thread the
session and the benchmarks set; a multi-threaded BLAS's own threads keep their setting. float64 keeps subnormals: its gradient checks see exact
values. Processors other than x86 keep their default.
"""

from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from gradtui.engine.jit import kernel

FLUSH_TO_ZERO = 0x8000  # results below the normal range become 0
DENORMALS_ARE_ZERO = 0x0040  # subnormal inputs are read as 0
SUPPORTED = platform.machine().lower() in ("x86_64", "amd64")


def _mxcsr_call(builder, name, slot):
    fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()])
    fn = cgutils.get_or_insert_function(builder.module, fnty, name)
    builder.call(fn, [builder.bitcast(slot, ir.IntType(8).as_pointer())])


@intrinsic
def _stmxcsr(typingctx):
    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
        return builder.load(slot)
    return types.uint32(), codegen


@intrinsic
def _ldmxcsr(typingctx, value):
    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        builder.store(args[0], slot)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()
    return types.void(types.uint32), codegen


@kernel
def read_mxcsr():
    """This thread's MXCSR (x86 only)."""
    return _stmxcsr()


@kernel
def write_mxcsr(value):
    """Load ``value`` into this thread's MXCSR (x86 only)."""
    _ldmxcsr(np.uint32(value))


if SUPPORTED:
    @kernel
    def begin_flush(on):
        """Inside a kernel: set FTZ and DAZ when ``on``; returns the MXCSR to restore with end_flush.
        A kernel that flushes itself spares its caller the two register calls of ``flushed``."""
        saved = _stmxcsr()
        if on:
            _ldmxcsr(saved | np.uint32(FLUSH_TO_ZERO | DENORMALS_ARE_ZERO))
        return saved

    @kernel
    def end_flush(on, saved):
        """Inside a kernel: put back the MXCSR begin_flush returned (when it changed it)."""
        if on:
            _ldmxcsr(saved)
else:  # other processors keep their default (and have no MXCSR)
    @kernel
    def begin_flush(on):
        return np.uint32(0)

    @kernel
    def end_flush(on, saved):
        return None


class flushed:
    """``with flushed(dtype):`` float32 kernel calls inside treat subnormals as zero."""

    __slots__ = ("_active", "_saved")

    def __init__(self, dtype):
        self._active = SUPPORTED and np.dtype(dtype) == np.float32
        self._saved = 0

    def __enter__(self):
        if self._active:
            self._saved = int(read_mxcsr())
            write_mxcsr(self._saved | FLUSH_TO_ZERO | DENORMALS_ARE_ZERO)
        return self

    def __exit__(self, *exc):
        if self._active:
            write_mxcsr(self._saved)
        return False
