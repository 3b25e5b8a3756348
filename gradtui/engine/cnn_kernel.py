"""The fused CNN kernel: convolutions as im2col matrix products, batch norm, residual
blocks, global average pooling and a linear head; forward, loss, backward and statistics.

Activations are NHWC, stored as (batch*height*width, channels) matrices, so a 3x3
convolution of stride s with same padding (pad 1) is one product

    cols[(b, oy, ox), (ky, kx, c)] = x[b, s*oy + ky - 1, s*ox + kx - 1, c]   (0 outside)
    z = cols W + b,   W of shape (9*C_in, C_out)

and per-channel batch norm over (batch, height, width) is the MLP's batch norm on that
matrix. Layer l (of ``depth``):  y = BN(z) or z;  a = phi(y);  out = a + skip, where
skip is 0, the block input (identity) or the block input subsampled by the stride and
multiplied by a 1x1 projection P (C_src x C_out), for the second layer of a residual block.
Head: p = mean over positions of the last output (batch x C); logits = p W_o + b_o.

Backward (delta = dL/dz at every layer, before batch norm):
    db = sum delta; at stride 1, from D = im2col(delta) alone: dL/d(input) = D F with F the
    flipped kernel (F[(ky, kx, co), ci] = W[(2-ky, 2-kx, ci), co]) and dW the mirrored taps of
    D^T input (_backward_transposed); at stride 2, dW = cols^T delta and delta W^T scattered
    back (col2im). A skip adds dL/dout to its source (through P^T when projected),
    dP = sub^T dL/dout.

The im2col matrix (gradtui.engine.im2col) is never built whole: conv_forward and
conv_backward fill it a chunk of rows at a time into a buffer of fixed size and run each
chunk's products at once, so the columns are written and multiplied while they sit in the
core's cache.
Products of a few hundred rows also run at 1.4-2x the GFLOP/s of one product over the whole
batch (x^T delta most of all): OpenBLAS keeps their operands in cache as well.

Layer table columns (int64, one row per convolution, then a head row with W, b, C_IN, C_OUT):
    W, b, gamma, beta, alpha, P offsets (-1 when absent), C_IN, C_OUT, S_IN, S_OUT (square
    sizes), STRIDE, SKIP (0 none, 1 identity, 2 projection), SRC (layer whose output the skip
    reads; -1 the input image), OFF (offset of this layer's block in the flat activation buffers).
"""

from __future__ import annotations

import numpy as np

from gradtui.engine.activations import PRELU, activate
from gradtui.engine.blocks import add_row, dot_transposed, matrix
from gradtui.engine.im2col import KSIZE, accumulate, col2im_add, im2col, padded_scratch
from gradtui.engine.jit import kernel
from gradtui.engine.batchnorm_kernel import batchnorm_backward, batchnorm_forward
from gradtui.engine.mlp_kernel import _bias_grad_and_norm, _delta, _layer_stats, _loss_and_dlogits, _output_stats

(COL_W, COL_B, COL_GAMMA, COL_BETA, COL_ALPHA, COL_P, COL_C_IN, COL_C_OUT, COL_S_IN, COL_S_OUT,
 COL_STRIDE, COL_SKIP, COL_SRC, COL_OFF) = range(14)
N_COLS = 14
SKIP_NONE, SKIP_IDENTITY, SKIP_PROJECTION = range(3)


@kernel(inline="always")
def _block(flat, offset, rows, cols):
    return flat[offset : offset + rows * cols].reshape((rows, cols))


@kernel(inline="always")
def _wide(a):
    """The elements of the contiguous (n, m) block ``a`` as rows of g m (g = 8, 4, 2 or 1, the
    largest that divides n): passes that treat every column alike run faster over wide rows
    than over rows of a few channels (statistics and the delta about 2x, on 16 channels)."""
    n, m = a.shape
    g = 8
    while n % g:
        g //= 2
    return a.reshape((n // g, m * g))


@kernel(inline="always")
def _activate(act, z, out, d, slope, alpha, elu_alpha, exact):
    """activate() over wide rows where phi is the same for every channel (all but prelu)."""
    if act == PRELU:
        activate(act, z, out, d, slope, alpha, elu_alpha, exact)
    else:
        activate(act, _wide(z), _wide(out), _wide(d), slope, alpha, elu_alpha, exact)


@kernel
def _conv_layer_stats(out, d, sat_limit, alive, act_mean, act_std, dead, saturation, l):
    """_layer_stats of a layer's output over wide rows; a channel is dead when its column is
    dead in every group of positions (``alive``: 8 C flags)."""
    m = out.shape[1]
    wide_d = _wide(d)
    _layer_stats(_wide(out), wide_d, sat_limit, alive, act_mean, act_std, dead, saturation, l)
    if dead[l] > 0.0:  # then alive holds the flags of the wide columns
        n_dead = 0
        for c in range(m):
            live = 0
            for t in range(wide_d.shape[1] // m):
                live |= alive[t * m + c]
            n_dead += live == 0
        dead[l] = n_dead / m


@kernel
def _conv_delta(dout, d, dz, db):
    """_delta (dz = dout * phi', db its column sums; returns ||dz||) over wide rows."""
    m = dz.shape[1]
    wide = _wide(dz)
    sums = np.empty(wide.shape[1], dz.dtype)
    norm = _delta(_wide(dout), _wide(d), wide, sums)
    for c in range(m):
        total = sums[c]
        for t in range(1, wide.shape[1] // m):
            total += sums[t * m + c]
        db[c] = total
    return norm


@kernel
def conv_forward(h, W, bias, z, s_in, c_in, stride, s_out, cols, then_activate, act, out, d, slope, alpha,
                 elu_alpha, exact):
    """z = im2col(h) W + bias, a chunk of output positions at a time: each chunk's columns
    (``cols``, as many rows as it holds) stay in cache between im2col and the product, and
    its rows of z between the product, the bias and (when ``then_activate``) the activation
    (out = phi(z), d = phi'(z))."""
    n, k = z.shape[0], W.shape[0]
    chunk = cols.size // k
    chunk = min(n, chunk - chunk % 8 if chunk >= 8 else chunk)  # whole groups for _wide
    pad = padded_scratch(s_in, c_in, h)
    c_out = z.shape[1]
    tiled = np.empty(8 * c_out, z.dtype)  # the bias once per position of a wide row
    for j in range(tiled.size):
        tiled[j] = bias[j % c_out]
    for first in range(0, n, chunk):
        rows = min(chunk, n - first)
        cm = cols[: rows * k].reshape((rows, k))
        im2col(h, s_in, c_in, stride, s_out, first, rows, cm, pad)
        zc = z[first : first + rows]
        np.dot(cm, W, zc)
        wide = _wide(zc)
        add_row(wide, tiled[: wide.shape[1]])
        if then_activate:
            _activate(act, zc, out[first : first + rows], d[first : first + rows], slope, alpha, elu_alpha, exact)


@kernel(inline="always")
def _flipped(W, c_in, c_out, scratch):
    """The kernel that maps dz to dL/d(input) as a stride-1 convolution:
    F[(ky, kx, co), ci] = W[(2 - ky, 2 - kx, ci), co], written into ``scratch``."""
    taps = KSIZE * KSIZE
    F = scratch[: taps * c_out * c_in].reshape((taps * c_out, c_in))
    for t in range(taps):
        for co in range(c_out):
            for ci in range(c_in):
                F[t * c_out + co, ci] = W[(taps - 1 - t) * c_in + ci, co]
    return F


@kernel
def conv_backward(h, W, dz, dW, dh, input_grad, fresh, s_in, c_in, stride, s_out, cols, part, Wt):
    """dW = im2col(h)^T dz and, when ``input_grad``, dL/dh added into dh (written into it when
    ``fresh``: dh holds nothing yet), chunk by chunk as in conv_forward (``part`` holds a
    chunk's share of a product, ``Wt`` the rearranged kernel)."""
    if input_grad and stride == 1:
        _backward_transposed(h, W, dz, dW, dh, fresh, s_in, c_in, cols, part, Wt)
        return
    n, k = dz.shape[0], W.shape[0]
    c_out = W.shape[1]
    chunk = min(n, cols.size // k)
    dW[:] = 0.0
    pad = padded_scratch(s_in, c_in, h)
    share = part[: k * c_out].reshape((k, c_out))
    wt = Wt[: k * c_out].reshape((c_out, k))
    if input_grad:
        for i in range(k):
            for j in range(c_out):
                wt[j, i] = W[i, j]
        if fresh:
            dh[:] = 0.0
    for first in range(0, n, chunk):
        rows = min(chunk, n - first)
        cm = cols[: rows * k].reshape((rows, k))
        im2col(h, s_in, c_in, stride, s_out, first, rows, cm, pad)
        d = dz[first : first + rows]
        np.dot(cm.T, d, share)
        dW += share
        if input_grad:
            np.dot(d, wt, cm)
            col2im_add(cm, s_in, c_in, stride, s_out, first, rows, dh)


@kernel
def _backward_transposed(h, W, dz, dW, dh, fresh, side, c_in, cols, part, Wt):
    """conv_backward at stride 1, from the im2col matrix of dz alone (D = im2col(dz)):

        dL/dh = D F                  F[(ky, kx, co), ci] = W[(2-ky, 2-kx, ci), co]
        dW[(ky, kx, ci), co] = G[(2-ky, 2-kx, co), ci],   G = D^T h

    (a window of dz around input position q holds every output that q fed, at the mirrored
    tap). Both products have 9 C_out inner or outer terms, which BLAS runs faster than the
    C_out inner terms of dz W^T, and nothing is scattered back (col2im)."""
    n, c_out = dz.shape
    taps = KSIZE * KSIZE
    k_dz = taps * c_out
    chunk = min(n, cols.size // k_dz)
    F = _flipped(W, c_in, c_out, Wt)
    dz_pad = padded_scratch(side, c_out, dz)
    G = np.zeros((k_dz, c_in), dz.dtype)
    share = part[: k_dz * c_in].reshape((k_dz, c_in))
    dx = np.empty(chunk * c_in, dh.dtype)
    dh_flat = dh.reshape(dh.size)
    for first in range(0, n, chunk):
        rows = min(chunk, n - first)
        D = cols[: rows * k_dz].reshape((rows, k_dz))
        im2col(dz, side, c_out, 1, side, first, rows, D, dz_pad)
        np.dot(D.T, h[first : first + rows], share)  # BLAS runs D^T h about 10% faster than h^T D
        G += share
        if fresh:
            np.dot(D, F, dh[first : first + rows])
        else:
            out = dx[: rows * c_in]
            np.dot(D, F, out.reshape((rows, c_in)))
            accumulate(dh_flat[first * c_in : (first + rows) * c_in], out)
    for t in range(taps):
        for ci in range(c_in):
            for co in range(c_out):
                dW[t * c_in + ci, co] = G[(taps - 1 - t) * c_out + co, ci]


@kernel
def subsample(src, batch, s_in, stride, s_out, out):
    """out[(b, oy, ox)] = src[(b, s*oy, s*ox)] (a 1x1 convolution's input at stride s)."""
    for b in range(batch):
        for oy in range(s_out):
            for ox in range(s_out):
                r = (b * s_in + stride * oy) * s_in + stride * ox
                out[(b * s_out + oy) * s_out + ox, :] = src[r, :]


@kernel
def subsample_add(dsub, batch, s_in, stride, s_out, dsrc):
    """The adjoint of subsample: dsrc[(b, s*oy, s*ox)] += dsub[(b, oy, ox)]."""
    for b in range(batch):
        for oy in range(s_out):
            for ox in range(s_out):
                r = (b * s_in + stride * oy) * s_in + stride * ox
                dsrc[r, :] += dsub[(b * s_out + oy) * s_out + ox, :]


@kernel(inline="always")
def _source(x, H, table, layer, batch):
    """The block-input matrix a layer's skip reads: the image or an earlier layer's output."""
    src = table[layer, COL_SRC]
    if src < 0:
        return x
    rows = batch * table[src, COL_S_OUT] ** 2
    return _block(H, table[src, COL_OFF], rows, table[src, COL_C_OUT])


@kernel
def cnn_forward(theta, table, x, act, slope, elu_alpha, batchnorm, exact, sat_limit,
                Z, ZH, D, H, inv_std, running_mean, running_var, cols, part, sub, skip,
                pooled, logits, train, use_running, stats, act_mean, act_std, dead, saturation):
    """Forward pass on x ((batch*S*S, C_image) NHWC rows); fills the buffers, the logits
    and (when ``stats``) the activation statistics."""
    depth = table.shape[0] - 1
    batch = pooled.shape[0]
    dummy = theta[0:0]
    alive = np.zeros(8 * table[:depth, COL_C_OUT].max(), np.uint8)
    for l in range(depth):
        c_in, c_out = table[l, COL_C_IN], table[l, COL_C_OUT]
        s_in, s_out, stride = table[l, COL_S_IN], table[l, COL_S_OUT], table[l, COL_STRIDE]
        n = batch * s_out * s_out
        off = table[l, COL_OFF]
        h = x if l == 0 else _block(H, table[l - 1, COL_OFF], batch * s_in * s_in, c_in)
        z = _block(Z, off if act == PRELU else 0, n, c_out)
        alpha = theta[table[l, COL_ALPHA] : table[l, COL_ALPHA] + c_out] if act == PRELU else dummy
        out = _block(H, off, n, c_out)
        d = _block(D, off, n, c_out)
        conv_forward(h, matrix(theta, table[l, COL_W], KSIZE * KSIZE * c_in, c_out),
                     theta[table[l, COL_B] : table[l, COL_B] + c_out], z, s_in, c_in, stride, s_out, cols,
                     not batchnorm, act, out, d, slope, alpha, elu_alpha, exact)
        if batchnorm:  # over the whole batch, so after every chunk's product
            gamma = theta[table[l, COL_GAMMA] : table[l, COL_GAMMA] + c_out]
            beta = theta[table[l, COL_BETA] : table[l, COL_BETA] + c_out]
            batchnorm_forward(z, _block(ZH, off, n, c_out), inv_std[l], gamma, beta,
                               running_mean[l], running_var[l], train, use_running)
            _activate(act, z, out, d, slope, alpha, elu_alpha, exact)
        kind = table[l, COL_SKIP]
        if kind == SKIP_IDENTITY:
            out += _source(x, H, table, l, batch)
        elif kind == SKIP_PROJECTION:
            src = _source(x, H, table, l, batch)
            c_src = src.shape[1]
            s_src, step = table[l - 1, COL_S_IN], table[l - 1, COL_STRIDE]  # the block's input and stride
            sm = sub[: n * c_src].reshape((n, c_src))
            subsample(src, batch, s_src, step, s_out, sm)
            sk = skip[: n * c_out].reshape((n, c_out))
            np.dot(sm, matrix(theta, table[l, COL_P], c_src, c_out), sk)
            out += sk
        if stats:
            _conv_layer_stats(out, d, sat_limit, alive, act_mean, act_std, dead, saturation, l)
    last = depth - 1
    c, s_last = table[last, COL_C_OUT], table[last, COL_S_OUT]
    positions = s_last * s_last
    hl = _block(H, table[last, COL_OFF], batch * positions, c)
    pooled[:] = 0.0
    for b in range(batch):
        for p in range(positions):
            for j in range(c):
                pooled[b, j] += hl[b * positions + p, j]
    pooled /= positions
    n_out = table[depth, COL_C_OUT]
    np.dot(pooled, matrix(theta, table[depth, COL_W], c, n_out), logits)
    add_row(logits, theta[table[depth, COL_B] : table[depth, COL_B] + n_out])
    if stats:
        _output_stats(logits, act_mean, act_std, depth)
        dead[depth] = 0.0
        saturation[depth] = 0.0


@kernel
def cnn_backward(theta, grad, table, x, act, batchnorm, Z, ZH, D, H, inv_std, cols, part, sub, skip,
                 pooled, dlogits, dH, DZ, DY, scratch, stats, delta_norm):
    """Back-propagate dlogits; writes every parameter's gradient into ``grad``. ``dH`` (the
    size of H) collects dL/d(output) of every layer; ``skip`` doubles as dL/d(subsampled source)."""
    depth = table.shape[0] - 1
    batch = pooled.shape[0]
    c, n_out = table[depth, COL_C_IN], table[depth, COL_C_OUT]
    np.dot(pooled.T, dlogits, matrix(grad, table[depth, COL_W], c, n_out))
    norm = _bias_grad_and_norm(dlogits, grad[table[depth, COL_B] : table[depth, COL_B] + n_out])
    if stats:
        delta_norm[depth] = norm
    dpooled = np.empty_like(pooled)
    dot_transposed(dlogits, matrix(theta, table[depth, COL_W], c, n_out), dpooled, scratch)
    last = depth - 1
    s_last = table[last, COL_S_OUT]
    positions = s_last * s_last
    # written[l]: dH's block for layer l holds a contribution (the first one is written, not
    # added, so dH needs no clearing)
    written = np.zeros(depth, np.bool_)
    dl = _block(dH, table[last, COL_OFF], batch * positions, c)
    for b in range(batch):
        for p in range(positions):
            for j in range(c):
                dl[b * positions + p, j] = dpooled[b, j] / positions
    written[last] = True
    for l in range(depth - 1, -1, -1):
        c_in, c_out = table[l, COL_C_IN], table[l, COL_C_OUT]
        s_in, s_out, stride = table[l, COL_S_IN], table[l, COL_S_OUT], table[l, COL_STRIDE]
        n = batch * s_out * s_out
        off = table[l, COL_OFF]
        dout = _block(dH, off, n, c_out)
        kind = table[l, COL_SKIP]
        if kind != SKIP_NONE and table[l, COL_SRC] >= 0:
            src_layer = table[l, COL_SRC]
            s_src = table[src_layer, COL_S_OUT]
            dsrc = _block(dH, table[src_layer, COL_OFF], batch * s_src * s_src, table[src_layer, COL_C_OUT])
            if kind == SKIP_IDENTITY and written[src_layer]:
                dsrc += dout
            elif kind == SKIP_IDENTITY:
                dsrc[:] = dout
            elif not written[src_layer]:
                dsrc[:] = 0.0
            written[src_layer] = True
        if kind == SKIP_PROJECTION:
            src = _source(x, H, table, l, batch)
            c_src = src.shape[1]
            s_src, step = table[l - 1, COL_S_IN], table[l - 1, COL_STRIDE]
            sm = sub[: n * c_src].reshape((n, c_src))
            subsample(src, batch, s_src, step, s_out, sm)
            P = matrix(theta, table[l, COL_P], c_src, c_out)
            np.dot(sm.T, dout, matrix(grad, table[l, COL_P], c_src, c_out))
            if table[l, COL_SRC] >= 0:
                dsm = skip[: n * c_src].reshape((n, c_src))
                dot_transposed(dout, P, dsm, scratch)
                subsample_add(dsm, batch, s_src, step, s_out, dsrc)
        db = grad[table[l, COL_B] : table[l, COL_B] + c_out]
        d = _block(D, off, n, c_out)
        if act == PRELU:
            # a = alpha*y for y <= 0, so da/dalpha_j = min(y, 0)
            dalpha = grad[table[l, COL_ALPHA] : table[l, COL_ALPHA] + c_out]
            dalpha[:] = 0.0
            Y = _block(Z, off, n, c_out)
            for i in range(n):
                for j in range(c_out):
                    if Y[i, j] <= 0.0:
                        dalpha[j] += dout[i, j] * Y[i, j]
        dz = DZ[: n * c_out].reshape((n, c_out))
        if batchnorm:
            dy = DY[: n * c_out].reshape((n, c_out))
            np.multiply(dout, d, dy)
            gamma = theta[table[l, COL_GAMMA] : table[l, COL_GAMMA] + c_out]
            dgamma = grad[table[l, COL_GAMMA] : table[l, COL_GAMMA] + c_out]
            dbeta = grad[table[l, COL_BETA] : table[l, COL_BETA] + c_out]
            batchnorm_backward(dy, _block(ZH, off, n, c_out), inv_std[l], gamma, dgamma, dbeta, dz)
            norm = _bias_grad_and_norm(dz, db)
        else:
            norm = _conv_delta(dout, d, dz, db)
        if stats:
            delta_norm[l] = norm
        h = x if l == 0 else _block(H, table[l - 1, COL_OFF], batch * s_in * s_in, c_in)
        k = KSIZE * KSIZE * c_in
        dh = _block(dH, table[l - 1, COL_OFF], batch * s_in * s_in, c_in) if l > 0 else h
        fresh = l > 0 and not written[l - 1]
        conv_backward(h, matrix(theta, table[l, COL_W], k, c_out), dz, matrix(grad, table[l, COL_W], k, c_out),
                      dh, l > 0, fresh, s_in, c_in, stride, s_out, cols, part, scratch)
        if l > 0:
            written[l - 1] = True


@kernel
def cnn_step(theta, grad, table, x, y_class, y_value, classification, act, slope, elu_alpha,
             batchnorm, exact, sat_limit, Z, ZH, D, H, inv_std, running_mean, running_var,
             cols, part, sub, skip, pooled, logits, dlogits, dH, DZ, DY, scratch, train, stats,
             act_mean, act_std, dead, saturation, delta_norm):
    """Forward, loss and backward in one call (the GIL is released throughout). Returns the loss."""
    cnn_forward(theta, table, x, act, slope, elu_alpha, batchnorm, exact, sat_limit,
                Z, ZH, D, H, inv_std, running_mean, running_var, cols, part, sub, skip,
                pooled, logits, train, False, stats, act_mean, act_std, dead, saturation)
    loss = _loss_and_dlogits(logits, y_class, y_value, classification, dlogits)
    cnn_backward(theta, grad, table, x, act, batchnorm, Z, ZH, D, H, inv_std, cols, part, sub, skip,
                 pooled, dlogits, dH, DZ, DY, scratch, stats, delta_norm)
    return loss


@kernel
def cnn_evaluate(theta, table, x, y_class, act, slope, elu_alpha, batchnorm, exact,
                 Z, ZH, D, H, inv_std, running_mean, running_var, cols, part, sub, skip,
                 pooled, logits, dlogits):
    """Loss and number of correct predictions, batch norm using its running statistics."""
    empty = np.zeros(1)
    cnn_forward(theta, table, x, act, slope, elu_alpha, batchnorm, exact, 0.0,
                Z, ZH, D, H, inv_std, running_mean, running_var, cols, part, sub, skip,
                pooled, logits, False, True, False, empty, empty, empty, empty)
    loss = _loss_and_dlogits(logits, y_class, logits, True, dlogits)
    correct = 0
    for i in range(logits.shape[0]):
        if np.argmax(logits[i]) == y_class[i]:
            correct += 1
    return loss, correct
