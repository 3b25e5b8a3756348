"""The MLP kernels' workspace (gradtui.engine.mlp_kernel.MLPWorkspace) as views into one buffer.

A training loop called once per step pays for every array argument it takes: the dispatcher
types it and wraps it for the kernel (a small allocation each), and between two steps of a
deep net these objects have left the caches. So the workspace's float arrays live in one
buffer and the class labels in a second; ``carve`` makes the views, from Python (for the
single-step calls) and inside the training loop alike, so both see the same layout.

``dims`` (WorkspaceDims): the leading sizes of Z, ZH and D (1 when only one layer's block is
kept, 0 when none is), the hidden layers L, the batch B, the width H, the inputs and outputs
and the shape of the regression targets' block. Each view starts on a 64-byte boundary of
a buffer that does (``allocate``). The flat WT holds a weight matrix's transpose for the
backward pass (allocated per call before: a 16 KB request per step at width 64).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from gradtui.engine.jit import kernel
from gradtui.engine.mlp_kernel import MLPWorkspace

WorkspaceDims = namedtuple("WorkspaceDims", [
    "z_layers", "zh_layers", "d_layers", "depth", "batch", "width", "n_in", "n_out", "yv_rows", "yv_cols",
])
ALIGN_BYTES = 64


@kernel(inline="always")
def _aligned(n, itemsize):
    """n elements rounded up to a whole number of ALIGN_BYTES."""
    per = ALIGN_BYTES // itemsize
    return (n + per - 1) // per * per


@kernel(inline="always")
def _block(buffer, offset, rows, cols):
    """A (rows, cols) view at ``offset``; returns it and the next aligned offset."""
    n = rows * cols
    return buffer[offset : offset + n].reshape((rows, cols)), offset + _aligned(n, buffer.itemsize)


@kernel(inline="always")
def _layers(buffer, offset, layers, rows, cols):
    """A (layers, rows, cols) view at ``offset``; returns it and the next aligned offset."""
    n = layers * rows * cols
    return buffer[offset : offset + n].reshape((layers, rows, cols)), offset + _aligned(n, buffer.itemsize)


@kernel
def carve(buffer, labels, dims):
    """The MLPWorkspace whose float arrays are views into ``buffer`` (from ``allocate``) and
    whose class labels are ``labels``."""
    L, B, H = dims.depth, dims.batch, dims.width
    o = 0
    Z, o = _layers(buffer, o, dims.z_layers, B, H)
    ZH, o = _layers(buffer, o, dims.zh_layers, B, H)
    D, o = _layers(buffer, o, dims.d_layers, B, H)
    Hs, o = _layers(buffer, o, L, B, H)
    inv_std, o = _block(buffer, o, L, H)
    logits, o = _block(buffer, o, B, dims.n_out)
    dlogits, o = _block(buffer, o, B, dims.n_out)
    dH, o = _block(buffer, o, B, H)
    dH_next, o = _block(buffer, o, B, H)
    DZ, o = _block(buffer, o, B, H)
    xb, o = _block(buffer, o, B, dims.n_in)
    yvb, o = _block(buffer, o, dims.yv_rows, dims.yv_cols)
    WT, o = _block(buffer, o, 1, H * max(H, dims.n_out))
    return MLPWorkspace(Z, ZH, D, Hs, inv_std, logits, dlogits, dH, dH_next, DZ, xb, labels, yvb, WT[0])


def buffer_size(dims: WorkspaceDims, itemsize: int) -> int:
    """Elements ``carve`` takes from the buffer (the same sums, in Python)."""
    per = ALIGN_BYTES // itemsize

    def aligned(n: int) -> int:
        return -(-n // per) * per

    L, B, H = dims.depth, dims.batch, dims.width
    blocks = [dims.z_layers * B * H, dims.zh_layers * B * H, dims.d_layers * B * H, L * B * H, L * H,
              B * dims.n_out, B * dims.n_out, B * H, B * H, B * H, B * dims.n_in, dims.yv_rows * dims.yv_cols,
              H * max(H, dims.n_out)]
    return sum(aligned(n) for n in blocks)


def allocate(dims: WorkspaceDims, dtype) -> np.ndarray:
    """A zeroed buffer for ``dims`` whose first element lies on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    n = buffer_size(dims, dtype.itemsize)
    pad = ALIGN_BYTES // dtype.itemsize
    raw = np.zeros(n + pad, dtype)
    start = (-raw.ctypes.data % ALIGN_BYTES) // dtype.itemsize
    return raw[start : start + n]
