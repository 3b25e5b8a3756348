"""The im2col matrix of a 3x3 convolution (same padding) and its adjoint, built a chunk of rows
at a time (gradtui.engine.cnn_kernel has the convolutions that use them).

For output position (b, oy, ox) of a convolution of stride s on NHWC rows ``src``:

    cols[r, (ky, kx, c)] = src[(b, s*oy + ky - 1, s*ox + kx - 1), c]   (0 outside the image)

Each image is first copied into the interior of a zero-bordered scratch image of side S+2
(``pad``), so every window row (ky) is one run of 3 C contiguous values and a row of the
matrix is three copies, with no test for the border. The copies are memcpy calls: for the
run lengths of 1, 16, 32 and 64 channels the length is a compile-time constant and LLVM emits a
few vector moves. A vectorised loop over the same 48 values costs about as much as the
whole row's useful work (its scalar remainder loop runs every time), and the border tests of
an unpadded copy cost more on 8x8 images, where 28 of 64 positions touch the border: on one
core, 64 8x8 images of 16 channels took 0.046 ms instead of 0.085 ms.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from gradtui.engine.jit import kernel

KSIZE = 3


@intrinsic(prefer_literal=True)
def _memcpy(typingctx, dst, dst_start, src, src_start, count):
    """dst.flat[dst_start : dst_start + count] = src.flat[src_start : src_start + count] for two
    contiguous arrays of one dtype, as one llvm.memcpy (no bounds check: the caller's indices
    are in range). A literal ``count`` makes the length a compile-time constant."""
    if not (isinstance(dst, types.Array) and isinstance(src, types.Array) and dst.dtype == src.dtype
            and isinstance(count, types.Integer)):
        return None
    literal = count.literal_value if isinstance(count, types.IntegerLiteral) else None

    def codegen(context, builder, signature, args):
        dst_array = context.make_array(signature.args[0])(context, builder, args[0])
        src_array = context.make_array(signature.args[2])(context, builder, args[2])
        intp = context.get_value_type(types.intp)
        target = builder.gep(dst_array.data, [builder.sext(args[1], intp) if args[1].type != intp else args[1]])
        source = builder.gep(src_array.data, [builder.sext(args[3], intp) if args[3].type != intp else args[3]])
        if literal is not None:
            n = context.get_constant(types.intp, literal)
        else:
            n = builder.sext(args[4], intp) if args[4].type != intp else args[4]
        itemsize = context.get_abi_sizeof(context.get_value_type(signature.args[0].dtype))
        cgutils.raw_memcpy(builder, target, source, n, itemsize)
        return context.get_dummy_value()
    return types.none(dst, dst_start, src, src_start, count), codegen


@kernel(inline="always")
def copy_run(dst, d, src, s, n):
    """dst[d : d + n] = src[s : s + n] (flat, contiguous, not overlapping)."""
    if n == 3:  # single-channel images
        _memcpy(dst, d, src, s, 3)
    elif n == 48:
        _memcpy(dst, d, src, s, 48)
    elif n == 96:
        _memcpy(dst, d, src, s, 96)
    elif n == 192:
        _memcpy(dst, d, src, s, 192)
    else:
        _memcpy(dst, d, src, s, n)


@kernel(inline="always")
def pad_image(flat, b, s_in, c_in, pad):
    """Copy image b of the flat NHWC rows into the interior of ``pad`` ((s_in+2)^2 c_in values
    whose border is 0)."""
    side = s_in * c_in
    wide = s_in + 2
    for iy in range(s_in):
        copy_run(pad, ((iy + 1) * wide + 1) * c_in, flat, (b * s_in + iy) * side, side)


@kernel(inline="always")
def padded_scratch(s_in, c_in, like):
    """A zero image of side s_in + 2 in ``like``'s dtype (the border stays 0; pad_image fills
    the interior)."""
    return np.zeros((s_in + 2) * (s_in + 2) * c_in, like.dtype)


@kernel
def _window_rows(pad, wide, c_in, stride, oy, ox_from, ox_to, out, r, k):
    """Rows r, r+1, ... of the im2col matrix (flat ``out``, k columns) for output positions
    (oy, ox_from) to (oy, ox_to - 1) of the image in ``pad``."""
    width = KSIZE * c_in
    for ox in range(ox_from, ox_to):
        corner = (stride * oy * wide + stride * ox) * c_in
        for ky in range(KSIZE):
            copy_run(out, r * k + ky * width, pad, corner + ky * wide * c_in, width)
        r += 1


@kernel
def im2col(src, s_in, c_in, stride, s_out, first, rows, cols, pad):
    """cols[r, (ky, kx, c)] = src[(b, s*oy+ky-1, s*ox+kx-1), c] for the ``rows`` output positions
    (b, oy, ox) from row ``first`` on (r counted from there), 0 in the padding. ``pad``: a
    padded_scratch of this source's size."""
    flat = src.reshape(src.size)
    out = cols.reshape(cols.size)
    k = cols.shape[1]
    per_image = s_out * s_out
    b = -1
    position, last = first, first + rows
    while position < last:
        if position // per_image != b:
            b = position // per_image
            pad_image(flat, b, s_in, c_in, pad)
        oy, ox = divmod(position - b * per_image, s_out)
        end = min(s_out, ox + last - position)
        _window_rows(pad, s_in + 2, c_in, stride, oy, ox, end, out, position - first, k)
        position += end - ox


@kernel(inline="always")
def accumulate(dst, src):
    """dst[:] += src[:] for two short 1D views: indexed from 0, the loop vectorises (an index
    computed from offsets would carry Numba's negative-index check into every iteration)."""
    for j in range(dst.size):
        dst[j] += src[j]


@kernel
def col2im_add(dcols, s_in, c_in, stride, s_out, first, rows, dsrc):
    """The adjoint of im2col: dsrc[(b, iy, ix), c] += every dcols entry that copied it."""
    flat = dsrc.reshape(dsrc.size)
    grads = dcols.reshape(dcols.size)
    k = dcols.shape[1]
    width = KSIZE * c_in
    b, pos = divmod(first, s_out * s_out)
    oy, ox = divmod(pos, s_out)
    for r in range(rows):
        left = stride * ox - 1
        for ky in range(KSIZE):
            iy = stride * oy + ky - 1
            if iy < 0 or iy >= s_in:
                continue
            g = r * k + ky * width
            row = (b * s_in + iy) * s_in
            if left >= 0 and left + KSIZE <= s_in:
                accumulate(flat[(row + left) * c_in : (row + left + KSIZE) * c_in], grads[g : g + width])
                continue
            for kx in range(KSIZE):
                ix = left + kx
                if 0 <= ix < s_in:
                    accumulate(flat[(row + ix) * c_in : (row + ix + 1) * c_in], grads[g + kx * c_in : g + (kx + 1) * c_in])
        ox += 1
        if ox == s_out:
            ox = 0
            oy += 1
            if oy == s_out:
                oy = 0
                b += 1
