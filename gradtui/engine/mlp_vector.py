"""The MLP's hidden-layer products with their elementwise work in vector registers (float32).

At width 64 a hidden layer's products (B x 64 times 64 x 64) run near the core's peak, in
BLAS or in gradtui.engine.cell_vector's register blocks alike; the passes around them (the
bias and phi, the statistics, dL/dz = dL/dh * phi', the bias gradient and ||dL/dz||) each
read and write the (B, H) block again. Here each product is taken in registers with
cell_vector's primitives (rows of the result in 16-wide float32 vectors, H a multiple of 16
up to 64) and each row is finished while it is there, for tanh and the sigmoid, whose
phi' is a function of phi (phi' is never stored):

    layer_forward:  h = phi(x W + b), stored; phi' = 1 - h^2 (tanh) or h (1 - h) (sigmoid,
                    phi(y) = 1/2 + tanh(y/2)/2), with gradtui.engine.activations.fast_tanh's
                    rational (cell_vector's _Emitter.tanh); sums = [sum (h - c), sum (h - c)^2,
                    elements with phi' < limit] for a shift c; alive[j] |= phi' != 0.
    layer_backward: dz = (a W) * phi'(h), phi' recomputed from the layer's output h, stored;
                    db = column sums of dz (overwritten); sums[0] = ||dz||^2.
    weight_gradient: G = A^T B (dW = h^T dz), stored; sums[0] = ||G||^2; optionally plain
                    SGD on the weights, W' = W - lr (G + decay W), with gradtui.engine.update's
                    sums of W^2, W'^2 and the step's square (the update pass then skips them).

Sums are taken in float32 over one block of rows (up to 16 vectors) and added up in float64.
Arrays are flat row-major blocks at an offset (elements) into a contiguous array, row strides
as stated; nothing is checked (callers check cell_vector.vector_path and the shapes). Float64
arrays type-check but emit nothing.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from gradtui.engine.cell_vector import (
    LANES, _accumulators, _dispatch_on, _emit_blocks, _emit_product, _float32_codegen, _float_arrays,
)

_HALF = LANES // 2  # float64 lanes of one vector


class _Float64Sums:
    """``count`` running float64 sums, each two <8 x double> slots a float32 vector is added into."""

    def __init__(self, e, count):
        self.e = e
        self.vec = ir.VectorType(ir.DoubleType(), _HALF)
        zero = ir.Constant(self.vec, [ir.Constant(ir.DoubleType(), 0.0)] * _HALF)
        self.slots = [e.slots(2, zero) for _ in range(count)]
        module = e.b.module
        self._reduce = cgutils.get_or_insert_function(
            module, ir.FunctionType(ir.DoubleType(), [ir.DoubleType(), self.vec]), "llvm.vector.reduce.fadd.v8f64")

    def add(self, i, v):
        """Sum i += the 16 lanes of float32 vector v (widened, lane by lane)."""
        b = self.e.b
        undef = ir.Constant(v.type, ir.Undefined)
        for half, slot in enumerate(self.slots[i]):
            lanes = ir.Constant(ir.VectorType(self.e.i32, _HALF), [ir.Constant(self.e.i32, half * _HALF + j)
                                                                     for j in range(_HALF)])
            part = b.fpext(b.shuffle_vector(v, undef, lanes), self.vec)
            b.store(b.fadd(b.load(slot), part), slot)

    def total(self, i):
        b = self.e.b
        lo, hi = (b.load(slot) for slot in self.slots[i])
        return b.call(self._reduce, [ir.Constant(ir.DoubleType(), 0.0), b.fadd(lo, hi)])


def _phi(e, a, sigmoid):
    """(phi(a), phi'(a)) of a pre-activation vector: tanh or the sigmoid, phi' from phi."""
    b = e.b
    one = e.fconst(1.0)
    if sigmoid:
        half = e.fconst(0.5)
        h = b.fadd(half, b.fmul(half, e.tanh(b.fmul(half, a))))
        return h, b.fmul(h, b.fsub(one, h))
    h = e.tanh(a)
    return h, b.fsub(one, b.fmul(h, h))


def _phi_prime(e, h, sigmoid):
    b = e.b
    one = e.fconst(1.0)
    return b.fmul(h, b.fsub(one, h)) if sigmoid else b.fsub(one, b.fmul(h, h))


@intrinsic
def layer_forward(typingctx, rows, n, k, x, x_off, w, w_off, bias, b_off, out, out_off, sigmoid, shift, limit,
                  sums, alive):
    """h = phi(x W + b) for ``rows`` rows of ``n`` columns: x (rows, k) at x_off (row stride k),
    W (k, n) at w_off, b (n) at b_off, h at out_off of ``out``; tanh, or the sigmoid when
    ``sigmoid``. sums (float64, 3) = [sum (h - shift), sum (h - shift)^2, elements with
    phi' < limit] is overwritten; alive (uint8, n) is or-ed into."""
    if not (_float_arrays(x, w, bias, out) and isinstance(sums, types.Array) and isinstance(alive, types.Array)):
        return None
    sig = types.none(rows, n, k, x, x_off, w, w_off, bias, b_off, out, out_off, sigmoid, shift, limit, sums, alive)
    is32 = x.dtype == types.float32

    def body(e, values, signature):
        context, builder = e.context, e.b
        (rows_, n_, k_, x_, x_off_, w_, w_off_, b_, b_off_, out_, out_off_, sigmoid_, shift_, limit_, sums_,
         alive_) = values
        sigmoid_flag = context.cast(builder, sigmoid_, signature.args[11], types.boolean)
        shift_v = e.splat(context.cast(builder, shift_, signature.args[12], types.float32))
        lim = e.splat(context.cast(builder, limit_, signature.args[13], types.float32))
        w_start, b_start = builder.gep(w_, [w_off_]), builder.gep(b_, [b_off_])
        i8vec = ir.VectorType(ir.IntType(8), LANES)

        def emit(vectors, sigmoid):
            n_cols = vectors * LANES
            sums64 = _Float64Sums(e, 2)
            sat = e.slots(1, ir.Constant(e.i32, 0))[0]
            live = e.slots(vectors, ir.Constant(ir.VectorType(ir.IntType(1), LANES), None))

            def block(row, count):
                acc = _accumulators(e, count, vectors, lambda r, v: e.load(b_start, e.const(v * LANES)))
                _emit_product(e, acc, row, count, vectors, x_, x_off_, k_, w_start, k_)
                s = q = e.zero()
                for r in range(count):
                    start = e.index(out_off_, e.mul(e.index(row, r), n_cols))
                    for v in range(vectors):
                        h, d = _phi(e, builder.load(acc[r][v]), sigmoid)
                        e.store(h, out_, e.index(start, v * LANES))
                        shifted = builder.fsub(h, shift_v)
                        s = builder.fadd(s, shifted)
                        q = e.fma(shifted, shifted, q)
                        below = builder.bitcast(builder.fcmp_ordered("<", d, lim), ir.IntType(LANES))
                        count_below = builder.zext(builder.call(e.popcount, [below]), e.i32)
                        builder.store(builder.add(builder.load(sat), count_below), sat)
                        nonzero = builder.fcmp_unordered("!=", d, e.zero())
                        builder.store(builder.or_(builder.load(live[v]), nonzero), live[v])
                sums64.add(0, s)
                sums64.add(1, q)

            _emit_blocks(e, rows_, vectors, block)
            for v in range(vectors):
                alive_at = builder.bitcast(builder.gep(alive_, [e.const(v * LANES)]), i8vec.as_pointer())
                builder.store(builder.or_(builder.load(alive_at, align=1), builder.zext(builder.load(live[v]), i8vec)),
                              alive_at, align=1)
            values = (sums64.total(0), sums64.total(1), builder.sitofp(builder.load(sat), ir.DoubleType()))
            for i, value in enumerate(values):
                builder.store(value, builder.gep(sums_, [e.const(i)]))

        _dispatch_on(e, sigmoid_flag, n_, emit)

    return sig, _float32_codegen(is32, body)


@intrinsic
def layer_backward(typingctx, rows, n, k, a, a_off, w, h, h_off, sigmoid, dz, dz_off, db, db_off, sums):
    """dz = (A W) * phi'(h): A (rows, k) at a_off (row stride k), W (k, n) whole (the layer
    above's weights transposed), h (rows, n) at h_off, dz at dz_off; phi' of tanh, or of the
    sigmoid when ``sigmoid``. db (n) at db_off is overwritten with the column sums of dz;
    sums (float64, 1) with ||dz||^2."""
    if not (_float_arrays(a, w, h, dz, db) and isinstance(sums, types.Array)):
        return None
    sig = types.none(rows, n, k, a, a_off, w, h, h_off, sigmoid, dz, dz_off, db, db_off, sums)
    is32 = a.dtype == types.float32

    def body(e, values, signature):
        context, builder = e.context, e.b
        (rows_, n_, k_, a_, a_off_, w_, h_, h_off_, sigmoid_, dz_, dz_off_, db_, db_off_,
         sums_) = values
        sigmoid_flag = context.cast(builder, sigmoid_, signature.args[8], types.boolean)
        db_start = builder.gep(db_, [db_off_])

        def emit(vectors, sigmoid):
            n_cols = vectors * LANES
            sums64 = _Float64Sums(e, 1)
            dbs = e.slots(vectors, e.zero())

            def block(row, count):
                acc = _accumulators(e, count, vectors, lambda r, v: e.zero())
                _emit_product(e, acc, row, count, vectors, a_, a_off_, k_, w_, k_)
                q = e.zero()
                for r in range(count):
                    start = e.mul(e.index(row, r), n_cols)
                    for v in range(vectors):
                        d = _phi_prime(e, e.load(h_, e.index(h_off_, start, v * LANES)), sigmoid)
                        delta = builder.fmul(builder.load(acc[r][v]), d)
                        e.store(delta, dz_, e.index(dz_off_, start, v * LANES))
                        q = e.fma(delta, delta, q)
                        builder.store(builder.fadd(builder.load(dbs[v]), delta), dbs[v])
                sums64.add(0, q)

            _emit_blocks(e, rows_, vectors, block)
            for v in range(vectors):
                e.store(builder.load(dbs[v]), db_start, e.const(v * LANES))
            builder.store(sums64.total(0), builder.gep(sums_, [e.const(0)]))

        _dispatch_on(e, sigmoid_flag, n_, emit)

    return sig, _float32_codegen(is32, body)


@intrinsic
def weight_gradient(typingctx, m, n, k, a, a_off, b, b_off, grad, g_off, theta, out, w_off, update, lr, decay,
                    sums):
    """G = A^T B: A (k, m) at a_off (row stride m), B (k, n) at b_off (row stride n), G (m, n)
    stored at g_off of ``grad``; sums[0] = ||G||^2. With ``update``, also plain SGD on the
    weights W (m, n) at w_off of ``theta``: W' = W - lr (G + decay W) stored at w_off of
    ``out``, and sums[1:4] = [||W||^2, ||W'||^2, ||W' - W||^2] (gradtui.engine.update's
    sums, taken here while G is in registers)."""
    if not (_float_arrays(a, b, grad, theta, out) and isinstance(sums, types.Array)):
        return None
    sig = types.none(m, n, k, a, a_off, b, b_off, grad, g_off, theta, out, w_off, update, lr, decay, sums)
    is32 = a.dtype == types.float32

    def body(e, values, signature):
        context, builder = e.context, e.b
        (m_, n_, k_, a_, a_off_, b_, b_off_, grad_, g_off_, theta_, out_, w_off_, update_, lr_, decay_,
         sums_) = values
        update_flag = context.cast(builder, update_, signature.args[12], types.boolean)
        neg_lr = builder.fneg(e.splat(context.cast(builder, lr_, signature.args[13], types.float32)))
        decay_v = e.splat(context.cast(builder, decay_, signature.args[14], types.float32))
        b_start, g_start = builder.gep(b_, [b_off_]), builder.gep(grad_, [g_off_])
        w_start, out_start = builder.gep(theta_, [w_off_]), builder.gep(out_, [w_off_])

        def emit(vectors, update):
            n_cols = vectors * LANES
            sums64 = _Float64Sums(e, 4 if update else 1)

            def block(row, count):
                acc = _accumulators(e, count, vectors, lambda r, v: e.zero())
                _emit_product(e, acc, row, count, vectors, a_, a_off_, m_, b_start, k_, transposed_a=True)
                squares = [e.zero()] * (4 if update else 1)  # G, W, W', W' - W
                for r in range(count):
                    start = e.mul(e.index(row, r), n_cols)
                    for v in range(vectors):
                        at = e.index(start, v * LANES)
                        g = builder.load(acc[r][v])
                        e.store(g, g_start, at)
                        values = [g]
                        if update:
                            old = e.load(w_start, at)
                            # one rounding, as LLVM contracts update._sgd's old - lr * (g + decay old);
                            # its change new - old, reassociated there, is the step -lr (g + decay old)
                            step = builder.fmul(neg_lr, e.fma(decay_v, old, g))
                            new = builder.fadd(old, step)
                            e.store(new, out_start, at)
                            values += [old, new, step]
                        squares = [e.fma(x, x, s) for x, s in zip(values, squares)]
                for i, s in enumerate(squares):
                    sums64.add(i, s)

            _emit_blocks(e, m_, vectors, block)
            for i in range(4 if update else 1):
                builder.store(sums64.total(i), builder.gep(sums_, [e.const(i)]))

        _dispatch_on(e, update_flag, n_, emit)

    return sig, _float32_codegen(is32, body)
