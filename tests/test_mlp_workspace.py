"""The MLP workspace as views into one buffer (gradtui.engine.mlp_workspace)."""

import numpy as np
import pytest

from gradtui.engine.mlp_workspace import ALIGN_BYTES, WorkspaceDims, allocate, buffer_size, carve


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_views_are_disjoint_aligned_and_fill_the_buffer(dtype):
    dims = WorkspaceDims(z_layers=3, zh_layers=1, d_layers=0, depth=3, batch=5, width=7, n_in=2, n_out=3,
                         yv_rows=5, yv_cols=3)
    buffer = allocate(dims, dtype)
    labels = np.zeros(5, np.int64)
    ws = carve(buffer, labels, dims)
    shapes = {"Z": (3, 5, 7), "ZH": (1, 5, 7), "D": (0, 5, 7), "H": (3, 5, 7), "inv_std": (3, 7),
              "logits": (5, 3), "dlogits": (5, 3), "dH": (5, 7), "dH_next": (5, 7), "DZ": (5, 7),
              "xb": (5, 2), "yvb": (5, 3), "WT": (49,)}
    for name, shape in shapes.items():
        view = getattr(ws, name)
        assert view.shape == shape and view.dtype == dtype and view.flags.c_contiguous, name
        assert view.size == 0 or (np.shares_memory(view, buffer) and view.ctypes.data % ALIGN_BYTES == 0), name
    assert ws.ycb is labels
    # every element written through one view is seen by no other: fill each with its own number
    views = [getattr(ws, name) for name in shapes]
    for i, view in enumerate(views):
        view[...] = i + 1
    for i, view in enumerate(views):
        assert np.all(view == i + 1)
    assert buffer.size == buffer_size(dims, np.dtype(dtype).itemsize)
    last = ws.WT.ctypes.data + ws.WT.nbytes
    assert last <= buffer.ctypes.data + buffer.nbytes
