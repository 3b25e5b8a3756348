"""Borrowed arrays: views inside a kernel that skip reference counting.

Every view a kernel takes (``a[i]``, ``row[:H]``) increments and later decrements the
reference count of the array's memory, an atomic add through a call into Numba's
runtime. The LSTM's per-row loops take 5 to 14 views per example and step, about 80,000
a step at hidden 64, T 100, batch 32 (perf: 5-6% of the step in NRT_incref/NRT_decref).
``borrowed(a)`` is ``a`` with no owner recorded: views taken from it carry none either,
so those calls return at once. Safe only while the caller holds ``a`` for the whole use
and nothing taken from it is returned or stored.
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def borrowed(typingctx, a):
    """The array ``a`` (same data, shape and strides) without an owner to count references on."""
    if not isinstance(a, types.Array):
        return None

    def codegen(context, builder, signature, args):
        src = context.make_array(a)(context, builder, args[0])
        out = context.make_array(a)(context, builder)
        for field in ("nitems", "itemsize", "data", "shape", "strides"):
            setattr(out, field, getattr(src, field))
        out.meminfo = cgutils.get_null_value(out.meminfo.type)
        out.parent = cgutils.get_null_value(out.parent.type)
        return out._getvalue()

    return a(a), codegen
