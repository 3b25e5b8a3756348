"""The vanilla RNN's per-step products with their elementwise work in vector registers (float32).

A step's products are small (B x H times H x H, 32 x 64 x 64 at the benchmark's size): a BLAS
call runs them near the core's peak, but everything around them (the bias, the input's
projection, tanh and phi', the statistics, da = dh * phi', the norms, db) then takes passes of
its own over the (B, H) block: 1.5 us a step around a 2.4 us forward product. The
intrinsics here compute each product in registers, rows of C in 16-wide float32 vectors (H / 16
per row, H a multiple of 16 up to 64; ACCUMULATORS / (H / 16) rows at a time: 16 accumulators
on AVX-512, 4 on AVX2), each
step k adding the broadcast A[i, k] times row k of B (a fused multiply-add), and finish each
row while it is in registers:

    cell_forward:   a = init + x W_ih + h_prev W_hh   (init: the bias, row stride 0, or X W_ih + b)
                    with ``tanh_on``: h = tanh(a) (the rational of gradtui.engine.activations.fast_tanh,
                    the same operations), phi' = 1 - h^2, both stored; sums = [sum h, sum h^2,
                    elements with phi' < limit] (float32 sums, float64 results), alive[j] |= phi' != 0;
                    else a is stored (the caller applies another activation).
    cell_backward:  dh = [keep] dh + da W^T (W^T given as a matrix), stored in place;
                    da' = dh * phi', written over phi'; db += sum of da' over rows;
                    sums = [||dh||^2, ||da'||^2] (float32 sums, float64 results).
    grad_accumulate: C += A^T B (the weight gradients H_{t-1}^T DA and X^T DA over all T B rows).

Arrays are flat row-major blocks given by an offset (elements) into a contiguous array, with
row strides as stated at each intrinsic. Sizes and offsets are not checked: callers check
``vector_path`` first and pass blocks that lie inside their arrays. Float64 arrays type-check
but emit nothing (the callers' exact float64 path never reaches them).
"""

from __future__ import annotations

import numpy as np
from llvmlite import binding, ir
from numba import types
from numba.core import config
from numba.core import cgutils
from numba.extending import intrinsic

from gradtui.engine.activations import _CLAMP
from gradtui.engine.jit import kernel

LANES = 16  # float32 lanes of one vector (one AVX-512 register, two AVX2 registers)
MAX_VECTORS = 4  # vectors per row: H up to 64


def _processor_features():
    """The features of the processor Numba compiles for ({"+avx2", "+avx512f", ...}), as Numba
    takes them: NUMBA_CPU_FEATURES when it is set, else the host's. Numba keys its cache on the
    processor's name and features, so a kernel compiled for one answer is reused only where the
    answer is the same."""
    features = config.CPU_FEATURES
    if features is None:
        try:
            features = binding.get_host_cpu_features().flatten()
        except RuntimeError:  # features unknown on this platform
            return set()
    return set(features.split(","))


_FEATURES = _processor_features()
# The vector paths run where the processor has AVX2 (AVX-512 processors have it too); elsewhere
# (other architectures, x86 without AVX2) they are not measured and the callers take BLAS.
VECTOR_UNITS = "+avx2" in _FEATURES
# Accumulator vectors per block of rows. AVX-512 has 32 registers of 16 float32 lanes: 16
# accumulators and their operands fit. On AVX2 (16 registers of 8 lanes) each vector takes two
# registers, and 4 accumulators ran the float32 steps of benchmarks/bench_torch 35-55% faster
# than 16, which spilled (Zen 1: MLP 20 x 64 753-812 against 495-527 steps/s, MLP 100 x 32
# 952-983 against 694-719, RNN 289-294 against 207-209, LSTM 60-64 against 49-50; 6 ran between).
ACCUMULATORS = 16 if "+avx512f" in _FEATURES else 4

# fast_tanh's coefficients: p(x^2) highest first, then q(x^2).
_TANH_P = (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
           1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03)
_TANH_Q = (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03)


@kernel(inline="always")
def vector_path(a):
    """Whether the intrinsics take arrays like ``a`` (float32, not float64, by its item size; the
    last axis a multiple of 16 up to 64) on this processor (``VECTOR_UNITS``)."""
    n = a.shape[a.ndim - 1]
    return VECTOR_UNITS and a.itemsize == 4 and n % LANES == 0 and 0 < n <= LANES * MAX_VECTORS


class _Emitter:
    """IR helpers for one intrinsic's code: 16-wide float32 vectors at flat offsets."""

    def __init__(self, context, builder):
        self.context, self.b = context, builder
        self.f32 = ir.FloatType()
        self.vec = ir.VectorType(self.f32, LANES)
        self.intp = context.get_value_type(types.intp)
        self.i32 = ir.IntType(32)
        module = builder.module
        self._fma = cgutils.get_or_insert_function(module, ir.FunctionType(self.vec, [self.vec] * 3),
                                                   "llvm.fmuladd.v16f32")
        self._fsum = cgutils.get_or_insert_function(module, ir.FunctionType(self.f32, [self.f32, self.vec]),
                                                    "llvm.vector.reduce.fadd.v16f32")
        self.popcount = cgutils.get_or_insert_function(
            module, ir.FunctionType(ir.IntType(LANES), [ir.IntType(LANES)]), f"llvm.ctpop.i{LANES}")

    def const(self, value):
        return ir.Constant(self.intp, value)

    def index(self, *terms):
        """The sum of intp values and Python ints."""
        total = self.const(0)
        for term in terms:
            total = self.b.add(total, self.const(term) if isinstance(term, int) else term)
        return total

    def mul(self, a, b):
        return self.b.mul(a, self.const(b) if isinstance(b, int) else b)

    def load(self, base, at):
        return self.b.load(self.b.bitcast(self.b.gep(base, [at]), self.vec.as_pointer()), align=4)

    def store(self, value, base, at):
        self.b.store(value, self.b.bitcast(self.b.gep(base, [at]), self.vec.as_pointer()), align=4)

    def splat(self, scalar):
        undef = ir.Constant(self.vec, ir.Undefined)
        mask = ir.Constant(ir.VectorType(self.i32, LANES), [ir.Constant(self.i32, 0)] * LANES)
        return self.b.shuffle_vector(self.b.insert_element(undef, scalar, ir.Constant(self.i32, 0)), undef, mask)

    def fconst(self, value):
        return ir.Constant(self.vec, [ir.Constant(self.f32, float(np.float32(value)))] * LANES)

    def fma(self, a, b, c):
        return self.b.call(self._fma, [a, b, c])

    def zero(self):
        return self.fconst(0.0)

    def slots(self, count, initial):
        """``count`` stack slots of ``initial``'s type set to it (LLVM keeps them in registers)."""
        out = []
        for _ in range(count):
            slot = cgutils.alloca_once(self.b, initial.type)
            self.b.store(initial, slot)
            out.append(slot)
        return out

    def fsum(self, v):
        return self.b.call(self._fsum, [ir.Constant(self.f32, 0.0), v])

    def tanh(self, x):
        """fast_tanh on a vector, operation for operation (NaN passes through the clamps)."""
        b = self.b
        # min(c, x) as c < x ? c : x, max as -c > x ? -c : x: a NaN x fails both tests and passes
        # through (x86's vminps / vmaxps, which these compile to, return their second operand)
        high, low = self.fconst(_CLAMP), self.fconst(-_CLAMP)
        x = b.select(b.fcmp_ordered("<", high, x), high, x)
        x = b.select(b.fcmp_ordered(">", low, x), low, x)
        x2 = b.fmul(x, x)
        p = self.fconst(_TANH_P[0])
        for c in _TANH_P[1:]:
            p = self.fma(x2, p, self.fconst(c))
        p = b.fmul(x, p)
        q = self.fconst(_TANH_Q[0])
        for c in _TANH_Q[1:]:
            q = self.fma(x2, q, self.fconst(c))
        return b.fdiv(p, q)


def _emit_blocks(e, rows, vectors, body):
    """Call ``body(row, rows_in_block)`` for blocks of rows covering [0, rows): full blocks of
    ACCUMULATORS // vectors rows in a loop, then at most one block each of half, a quarter, ...
    of that (2 rows of a weight gradient with 2 inputs then keep 8 independent sums, not 4),
    and single rows for what is left (with 3 vectors a block has 5 rows: 2 + 1 leave a fourth)."""
    per_block = ACCUMULATORS // vectors
    full = e.b.sdiv(rows, e.const(per_block))
    with cgutils.for_range(e.b, full) as loop:
        body(e.mul(loop.index, per_block), per_block)
    row = e.mul(full, per_block)
    size = per_block // 2
    while size > 1:
        slot = cgutils.alloca_once_value(e.b, row)
        left = e.b.sub(rows, e.b.load(slot))
        with e.b.if_then(e.b.icmp_signed(">=", left, e.const(size))):
            body(e.b.load(slot), size)
            e.b.store(e.index(e.b.load(slot), size), slot)
        row = e.b.load(slot)
        size //= 2
    with cgutils.for_range(e.b, e.b.sub(rows, row)) as loop:
        body(e.index(row, loop.index), 1)


def _accumulators(e, count, vectors, first):
    """count x vectors stack slots of vectors, slot [r][v] set to ``first(r, v)``."""
    return [[e.slots(1, first(r, v))[0] for v in range(vectors)] for r in range(count)]


def _emit_product(e, acc, row, count, vectors, a, a_off, lda, w, k, transposed_a=False, columns=None, ldw=None):
    """acc[r][v] += sum_kk A[row + r, kk] W[kk, columns[v] : columns[v] + 16] over kk < k; A (rows, k)
    at a + a_off with row stride lda, or (k, rows) when ``transposed_a``. By default W's rows are
    ``vectors`` whole vectors (columns 16 v, row stride 16 vectors); else ``columns`` (ints or intp
    values, one per vector) and W's row stride ``ldw`` are given."""
    if columns is None:
        columns, ldw = [v * LANES for v in range(vectors)], vectors * LANES
    with cgutils.for_range(e.b, k) as loop:
        kk = loop.index
        w_row = [e.load(w, e.index(e.mul(kk, ldw), column)) for column in columns]
        for r in range(count):
            at = e.index(a_off, e.mul(kk, lda), row, r) if transposed_a else \
                e.index(a_off, e.mul(e.index(row, r), lda), kk)
            x = e.splat(e.b.load(e.b.gep(a, [at]), align=4))
            for v in range(vectors):
                e.b.store(e.fma(x, w_row[v], e.b.load(acc[r][v])), acc[r][v])


def _vectors(e, n):
    return e.b.sdiv(n, e.const(LANES))


def _dispatch(e, vectors_value, emit):
    """Emit ``emit(vectors)`` once for each vectors-per-row 1..4, switched on the runtime value."""
    end = e.b.append_basic_block("cell_vector_end")
    switch = e.b.switch(vectors_value, end)
    for vectors in range(1, MAX_VECTORS + 1):
        block = e.b.append_basic_block(f"cell_vector_{vectors}")
        switch.add_case(e.const(vectors), block)
        e.b.position_at_end(block)
        emit(vectors)
        e.b.branch(end)
    e.b.position_at_end(end)


def _dispatch_on(e, flag, n, emit):
    """Emit ``emit(vectors, True)`` and ``emit(vectors, False)`` for each vectors-per-row 1..4
    (n / 16 at run time), switched on the run-time boolean ``flag``."""
    with e.b.if_else(flag) as (on, off):
        with on:
            _dispatch(e, _vectors(e, n), lambda vectors: emit(vectors, True))
        with off:
            _dispatch(e, _vectors(e, n), lambda vectors: emit(vectors, False))


def _args(context, builder, sig, args):
    """Intrinsic arguments: arrays as float pointers to their data, the rest as intp or as is."""
    out = []
    for ty, value in zip(sig.args, args):
        if isinstance(ty, types.Array):
            out.append(context.make_array(ty)(context, builder, value).data)
        elif isinstance(ty, types.Integer):
            out.append(context.cast(builder, value, ty, types.intp))
        else:
            out.append(value)
    return out


def _float32_codegen(is32, body):
    """An intrinsic's codegen: ``body(e, values, signature)`` with an _Emitter and the arguments
    as _args gives them when the arrays are float32; nothing for float64."""
    def codegen(context, builder, signature, args):
        if is32:
            body(_Emitter(context, builder), _args(context, builder, signature, args), signature)
        return context.get_dummy_value()
    return codegen


def _float_arrays(*arrays):
    """Arrays of one float type (float32 runs; float64 type-checks and emits nothing)."""
    return all(isinstance(x, types.Array) for x in arrays) and len({x.dtype for x in arrays}) == 1 \
        and arrays[0].dtype in (types.float32, types.float64)


@intrinsic
def cell_forward(typingctx, rows, n, init, init_off, ld_init, x, x_off, k_in, w_ih, h, h_off, k_h, w_hh,
                 out_h, oh_off, out_d, od_off, tanh_on, limit, sums, alive):
    """a = init + x W_ih + h_prev W_hh for ``rows`` rows of ``n`` columns, then tanh and the
    statistics or a stored as is (see the module docstring). Row r of init at init_off + r ld_init;
    x (rows, k_in) at x_off; h_prev (rows, k_h) at h_off (k_h = 0 or n); W_ih (k_in, n) and
    W_hh (k_h, n) whole arrays; h (or a) and phi' (rows, n) at oh_off of out_h and od_off of out_d.
    With ``tanh_on``, sums (float64, 3) is overwritten and alive (uint8, n) or-ed into."""
    if not (_float_arrays(init, x, w_ih, h, w_hh, out_h, out_d) and isinstance(sums, types.Array)
            and isinstance(alive, types.Array)):
        return None
    sig = types.none(rows, n, init, init_off, ld_init, x, x_off, k_in, w_ih, h, h_off, k_h, w_hh, out_h, oh_off,
                     out_d, od_off, tanh_on, limit, sums, alive)
    is32 = init.dtype == types.float32

    def body(e, values, signature):
        context, builder = e.context, e.b
        (rows_, n_, init_, init_off_, ld_init_, x_, x_off_, k_in_, w_ih_, h_, h_off_, k_h_, w_hh_, out_h_, oh_off_,
         out_d_, od_off_, tanh_on_, limit_, sums_, alive_) = values
        tanh_flag = context.cast(builder, tanh_on_, signature.args[17], types.boolean)
        lim = e.splat(context.cast(builder, limit_, signature.args[18], types.float32))
        one = e.fconst(1.0)
        i8vec = ir.VectorType(ir.IntType(8), LANES)

        def emit(vectors, tanh):
            n_cols = vectors * LANES
            # one vector each for the sums of h and h^2 and a scalar count (popcount of the
            # mask) for phi' < limit: per-column accumulators spilled the tanh's constants
            s, q = e.slots(2, e.zero())
            sat = e.slots(1, ir.Constant(e.i32, 0))[0]
            live = e.slots(vectors, ir.Constant(ir.VectorType(ir.IntType(1), LANES), None))

            def block(row, count):
                acc = _accumulators(e, count, vectors, lambda r, v: e.load(
                    init_, e.index(init_off_, e.mul(e.index(row, r), ld_init_), v * LANES)))
                _emit_product(e, acc, row, count, vectors, x_, x_off_, k_in_, w_ih_, k_in_)
                _emit_product(e, acc, row, count, vectors, h_, h_off_, k_h_, w_hh_, k_h_)
                for r in range(count):
                    start = e.mul(e.index(row, r), n_cols)
                    for v in range(vectors):
                        at_h = e.index(oh_off_, start, v * LANES)
                        a = builder.load(acc[r][v])
                        if not tanh:
                            e.store(a, out_h_, at_h)
                            continue
                        t = e.tanh(a)
                        tt = builder.fmul(t, t)  # h^2 serves phi' and the sum of squares (an add, not an FMA)
                        d = builder.fsub(one, tt)
                        e.store(t, out_h_, at_h)
                        e.store(d, out_d_, e.index(od_off_, start, v * LANES))
                        builder.store(builder.fadd(builder.load(s), t), s)
                        builder.store(builder.fadd(builder.load(q), tt), q)
                        below = builder.bitcast(builder.fcmp_ordered("<", d, lim), ir.IntType(LANES))
                        count_below = builder.zext(builder.call(e.popcount, [below]), e.i32)
                        builder.store(builder.add(builder.load(sat), count_below), sat)
                        nonzero = builder.fcmp_unordered("!=", d, e.zero())
                        builder.store(builder.or_(builder.load(live[v]), nonzero), live[v])

            _emit_blocks(e, rows_, vectors, block)
            if not tanh:
                return
            for v in range(vectors):
                alive_at = builder.bitcast(builder.gep(alive_, [e.const(v * LANES)]), i8vec.as_pointer())
                builder.store(builder.or_(builder.load(alive_at, align=1), builder.zext(builder.load(live[v]), i8vec)),
                              alive_at, align=1)
            f64 = ir.DoubleType()
            for i, value in enumerate((builder.fpext(e.fsum(builder.load(s)), f64),
                                       builder.fpext(e.fsum(builder.load(q)), f64),
                                       builder.sitofp(builder.load(sat), f64))):
                builder.store(value, builder.gep(sums_, [e.const(i)]))

        with builder.if_else(tanh_flag) as (on, off):
            with on:
                _dispatch(e, _vectors(e, n_), lambda vectors: emit(vectors, True))
            with off:
                _dispatch(e, _vectors(e, n_), lambda vectors: emit(vectors, False))

    return sig, _float32_codegen(is32, body)


@intrinsic
def cell_backward(typingctx, rows, n, k, a, a_off, w, keep, dh, dh_off, d, d_off, db, sums):
    """dh = [keep] dh + A W (A (rows, k) at a_off, row stride n; W (k, n), the caller's W_hh^T),
    stored in place; da = dh * phi' written over phi' (d at d_off); db += column sums of da;
    sums (float64, 2) = [||dh||^2, ||da||^2]."""
    if not (_float_arrays(a, w, dh, d, db) and isinstance(sums, types.Array)):
        return None
    sig = types.none(rows, n, k, a, a_off, w, keep, dh, dh_off, d, d_off, db, sums)
    is32 = a.dtype == types.float32

    def body(e, values, signature):
        context, builder = e.context, e.b
        rows_, n_, k_, a_, a_off_, w_, keep_, dh_, dh_off_, d_, d_off_, db_, sums_ = values
        keep_flag = context.cast(builder, keep_, signature.args[6], types.boolean)

        def emit(vectors):
            n_cols = vectors * LANES
            qh, qa = e.slots(2, e.zero())  # one vector each, as for cell_forward's sums
            dbs = e.slots(vectors, e.zero())

            def block(row, count):
                acc = _accumulators(e, count, vectors, lambda r, v: builder.select(keep_flag, e.load(
                    dh_, e.index(dh_off_, e.mul(e.index(row, r), n_cols), v * LANES)), e.zero()))
                _emit_product(e, acc, row, count, vectors, a_, a_off_, n_, w_, k_)
                for r in range(count):
                    start = e.mul(e.index(row, r), n_cols)
                    for v in range(vectors):
                        g = builder.load(acc[r][v])
                        at_h = e.index(dh_off_, start, v * LANES)
                        at_d = e.index(d_off_, start, v * LANES)
                        da = builder.fmul(g, e.load(d_, at_d))
                        e.store(g, dh_, at_h)
                        e.store(da, d_, at_d)
                        builder.store(e.fma(g, g, builder.load(qh)), qh)
                        builder.store(e.fma(da, da, builder.load(qa)), qa)
                        builder.store(builder.fadd(builder.load(dbs[v]), da), dbs[v])

            _emit_blocks(e, rows_, vectors, block)
            total_h, total_a = e.fsum(builder.load(qh)), e.fsum(builder.load(qa))
            for v in range(vectors):
                at = e.const(v * LANES)
                e.store(builder.fadd(e.load(db_, at), builder.load(dbs[v])), db_, at)
            f64 = ir.DoubleType()
            builder.store(builder.fpext(total_h, f64), builder.gep(sums_, [e.const(0)]))
            builder.store(builder.fpext(total_a, f64), builder.gep(sums_, [e.const(1)]))

        _dispatch(e, _vectors(e, n_), emit)

    return sig, _float32_codegen(is32, body)


@intrinsic
def grad_accumulate(typingctx, m, n, k, a, a_off, b, b_off, c):
    """C += A^T B: A (k, m) at a_off (row stride m), B (k, n) at b_off (row stride n), C (m, n) whole."""
    if not _float_arrays(a, b, c):
        return None
    sig = types.none(m, n, k, a, a_off, b, b_off, c)
    is32 = a.dtype == types.float32

    def body(e, values, signature):
        builder = e.b
        m_, n_, k_, a_, a_off_, b_, b_off_, c_ = values
        b_start = builder.gep(b_, [b_off_])

        def emit(vectors):
            n_cols = vectors * LANES

            def block(row, count):
                acc = _accumulators(e, count, vectors,
                                    lambda r, v: e.load(c_, e.index(e.mul(e.index(row, r), n_cols), v * LANES)))
                _emit_product(e, acc, row, count, vectors, a_, a_off_, m_, b_start, k_, transposed_a=True)
                for r in range(count):
                    for v in range(vectors):
                        e.store(builder.load(acc[r][v]), c_, e.index(e.mul(e.index(row, r), n_cols), v * LANES))

            _emit_blocks(e, m_, vectors, block)

        _dispatch(e, _vectors(e, n_), emit)

    return sig, _float32_codegen(is32, body)
