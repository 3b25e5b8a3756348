"""The LSTM's per-step recurrent products with their gate and cell work in vector registers (float32).

The same approach as the vanilla cell's (gradtui.engine.cell_vector, whose emitter, blocking and
product loop these intrinsics share): each step is one product whose rows are finished while
they are in registers, instead of a BLAS call followed by passes of its own over the (B, 4 H)
gates. H is a multiple of 16 up to 64; gate blocks [i, f, g, o] as in gradtui.engine.lstm_kernel.

    lstm_cell_forward:  for each 16 units (a chunk) and 4 rows at a time (1 on AVX2: see
        cell_vector.ACCUMULATORS), the accumulators are the chunk's four gate pre-activations
        of those rows (W's columns k H + 16 v, k = 0..3), started from the bias (row stride 0)
        or the wide input's X W_ih + b, then x_t W_ih (narrow inputs) and h_{t-1} W_hh added. Then, per row:
            i, f, o = 0.5 + 0.5 tanh(a / 2), g = tanh(a)   (fast_tanh's rational, NaN passed on)
            c_t = f c_{t-1} + i g,  h_t = o tanh(c_t)
        gates, c_t and h_t stored; sums = [saturated gate elements, sum h, sum h^2, sum f]
        (float32 sums, float64 results) and alive[j] |= (some gate of unit j not saturated),
        with gated_kernel's definitions (sigmoid s(1-s) < SIG_SAT, tanh 1 - g^2 < TANH_SAT).
    lstm_cell_backward: dh_t = [keep] dh_t + da_{t+1} W_hh^T (rows of 4 vectors at H = 64), stored
        in place; then, per row, with dc the part of dL/dc_t carried from step t+1:
            dc += dh o (1 - tanh^2 c_t);  da = [dc g i(1-i), dc c_{t-1} f(1-f), dc i (1-g^2),
            dh tanh(c_t) o(1-o)] written over the gates;  dc <- dc f;  db += da;
        sums = [||dh_t||^2, ||da_t||^2] (float32 sums, float64 results).

Arrays are flat row-major blocks at element offsets, as in cell_vector; nothing is checked
(callers check ``vector_path`` and pass blocks inside their arrays); float64 arrays type-check
and emit nothing.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from gradtui.engine.cell_vector import (
    LANES, _accumulators, _dispatch, _emit_blocks, _emit_product, _float32_codegen, _float_arrays, _vectors,
)
from gradtui.engine.rnn_kernel import SIG_SAT, TANH_SAT

GATES = 4  # i, f, g, o
TANH_GATE = 2


def _sigmoid(e, x):
    """0.5 + 0.5 tanh(x / 2), as gated_kernel.gate_scales and fast_tanh give it."""
    half = e.fconst(0.5)
    return e.fma(half, e.tanh(e.b.fmul(half, x)), half)


def _popcount(e, mask):
    return e.b.zext(e.b.call(e.popcount, [e.b.bitcast(mask, ir.IntType(LANES))]), e.i32)


def _float64_sums(e, sums, values):
    f64 = ir.DoubleType()
    for i, value in enumerate(values):
        converted = e.b.sitofp(value, f64) if value.type == e.i32 else e.b.fpext(value, f64)
        e.b.store(converted, e.b.gep(sums, [e.const(i)]))


@intrinsic
def lstm_cell_forward(typingctx, rows, H, init, init_off, ld_init, x, x_off, k_in, w_ih, h, h_off, k_h, w_hh,
                      hs_off, ga, ga_off, c, c_prev_off, c_off, sums, alive):
    """One forward step of ``rows`` examples (see the module docstring): a = init + x W_ih +
    h_{t-1} W_hh, row r of init at init_off + r ld_init (4 H columns), x (rows, k_in) at x_off,
    h_{t-1} (rows, H) at h_off of h (k_h = 0 or H), W_ih (k_in, 4 H), W_hh (k_h, 4 H); the gates
    (rows, 4 H) at ga_off of ga, c_{t-1} and c_t (rows, H) at c_prev_off and c_off of c, h_t at
    hs_off of h. sums (float64, 4) is overwritten, alive (uint8, H) or-ed into."""
    if not (_float_arrays(init, x, w_ih, h, w_hh, ga, c) and isinstance(sums, types.Array)
            and isinstance(alive, types.Array)):
        return None
    sig = types.none(rows, H, init, init_off, ld_init, x, x_off, k_in, w_ih, h, h_off, k_h, w_hh, hs_off, ga,
                     ga_off, c, c_prev_off, c_off, sums, alive)
    is32 = init.dtype == types.float32

    def body(e, values, signature):
        builder = e.b
        (rows_, H_, init_, init_off_, ld_init_, x_, x_off_, k_in_, w_ih_, h_, h_off_, k_h_, w_hh_, hs_off_, ga_,
         ga_off_, c_, c_prev_off_, c_off_, sums_, alive_) = values
        G = e.mul(H_, GATES)
        one, sig_sat, tanh_sat = e.fconst(1.0), e.fconst(SIG_SAT), e.fconst(TANH_SAT)
        mask_type = ir.VectorType(ir.IntType(1), LANES)
        all_set = ir.Constant(mask_type, [ir.Constant(ir.IntType(1), 1)] * LANES)
        s, q, fs = e.slots(3, e.zero())  # sum h, sum h^2, sum f: one vector each
        sat = e.slots(1, ir.Constant(e.i32, 0))[0]
        live = e.slots(1, ir.Constant(mask_type, None))[0]
        with cgutils.for_range(builder, _vectors(e, H_)) as chunk:
            col = e.mul(chunk.index, LANES)
            columns = [e.index(e.mul(H_, k), col) for k in range(GATES)]
            builder.store(ir.Constant(mask_type, None), live)

            def block(row, count):
                acc = _accumulators(e, count, GATES, lambda r, k: e.load(
                    init_, e.index(init_off_, e.mul(e.index(row, r), ld_init_), columns[k])))
                _emit_product(e, acc, row, count, GATES, x_, x_off_, k_in_, w_ih_, k_in_, columns=columns, ldw=G)
                _emit_product(e, acc, row, count, GATES, h_, h_off_, H_, w_hh_, k_h_, columns=columns, ldw=G)
                for r in range(count):
                    a = [builder.load(acc[r][k]) for k in range(GATES)]
                    i, f, g, o = _sigmoid(e, a[0]), _sigmoid(e, a[1]), e.tanh(a[2]), _sigmoid(e, a[3])
                    at_ga = e.index(ga_off_, e.mul(e.index(row, r), G))
                    for k, value in enumerate((i, f, g, o)):
                        e.store(value, ga_, e.index(at_ga, columns[k]))
                    at = e.index(e.mul(e.index(row, r), H_), col)
                    c_new = e.fma(f, e.load(c_, e.index(c_prev_off_, at)), builder.fmul(i, g))
                    e.store(c_new, c_, e.index(c_off_, at))
                    h_new = builder.fmul(o, e.tanh(c_new))
                    e.store(h_new, h_, e.index(hs_off_, at))
                    builder.store(builder.fadd(builder.load(s), h_new), s)
                    builder.store(builder.fadd(builder.load(q), builder.fmul(h_new, h_new)), q)
                    builder.store(builder.fadd(builder.load(fs), f), fs)
                    flat = [builder.fcmp_ordered("<", builder.fmul(v, builder.fsub(one, v)), sig_sat) for v in (i, f, o)]
                    flat.append(builder.fcmp_ordered("<", builder.fsub(one, builder.fmul(g, g)), tanh_sat))
                    count_sat = builder.add(builder.add(_popcount(e, flat[0]), _popcount(e, flat[1])),
                                            builder.add(_popcount(e, flat[2]), _popcount(e, flat[3])))
                    builder.store(builder.add(builder.load(sat), count_sat), sat)
                    all_flat = builder.and_(builder.and_(flat[0], flat[1]), builder.and_(flat[2], flat[3]))
                    builder.store(builder.or_(builder.load(live), builder.xor(all_flat, all_set)), live)

            _emit_blocks(e, rows_, GATES, block)
            i8vec = ir.VectorType(ir.IntType(8), LANES)
            alive_at = builder.bitcast(builder.gep(alive_, [col]), i8vec.as_pointer())
            builder.store(builder.or_(builder.load(alive_at, align=1), builder.zext(builder.load(live), i8vec)),
                          alive_at, align=1)
        _float64_sums(e, sums_, (builder.load(sat), e.fsum(builder.load(s)), e.fsum(builder.load(q)),
                                 e.fsum(builder.load(fs))))

    return sig, _float32_codegen(is32, body)


@intrinsic
def lstm_cell_backward(typingctx, rows, H, k, a, a_off, w, keep, dh, dh_off, ga, ga_off, c, c_off, c_prev_off, dc,
                       db, sums):
    """One backward step (see the module docstring): dh_t = [keep] dh_t + A W, A = da_{t+1} (rows, k)
    at a_off (row stride 4 H; k = 0 or 4 H), W = W_hh^T (k, H); dh_t (rows, H) at dh_off; the gates
    (rows, 4 H) at ga_off of ga, replaced by da_t; c_t and c_{t-1} at c_off and c_prev_off of c;
    dc (rows, H) whole, updated; db (4 H) added to; sums (float64, 2) overwritten."""
    if not (_float_arrays(a, w, dh, ga, c, dc, db) and isinstance(sums, types.Array)):
        return None
    sig = types.none(rows, H, k, a, a_off, w, keep, dh, dh_off, ga, ga_off, c, c_off, c_prev_off, dc, db, sums)
    is32 = a.dtype == types.float32

    def body(e, values, signature):
        context, builder = e.context, e.b
        (rows_, H_, k_, a_, a_off_, w_, keep_, dh_, dh_off_, ga_, ga_off_, c_, c_off_, c_prev_off_, dc_, db_,
         sums_) = values
        keep_flag = context.cast(builder, keep_, signature.args[6], types.boolean)
        G = e.mul(H_, GATES)
        one = e.fconst(1.0)

        def emit(vectors):
            qh, qa = e.slots(2, e.zero())

            def block(row, count):
                acc = _accumulators(e, count, vectors, lambda r, v: builder.select(keep_flag, e.load(
                    dh_, e.index(dh_off_, e.mul(e.index(row, r), H_), v * LANES)), e.zero()))
                _emit_product(e, acc, row, count, vectors, a_, a_off_, G, w_, k_)
                for r in range(count):
                    for v in range(vectors):
                        d = builder.load(acc[r][v])
                        at = e.index(e.mul(e.index(row, r), H_), v * LANES)
                        e.store(d, dh_, e.index(dh_off_, at))
                        at_ga = [e.index(ga_off_, e.mul(e.index(row, r), G), e.mul(H_, gate), v * LANES)
                                 for gate in range(GATES)]
                        i, f, g, o = (e.load(ga_, at_gate) for at_gate in at_ga)
                        tc = e.tanh(e.load(c_, e.index(c_off_, at)))
                        dc_t = e.fma(builder.fmul(d, o), builder.fsub(one, builder.fmul(tc, tc)), e.load(dc_, at))
                        da = (builder.fmul(builder.fmul(dc_t, g), builder.fmul(i, builder.fsub(one, i))),
                              builder.fmul(builder.fmul(dc_t, e.load(c_, e.index(c_prev_off_, at))),
                                           builder.fmul(f, builder.fsub(one, f))),
                              builder.fmul(builder.fmul(dc_t, i), builder.fsub(one, builder.fmul(g, g))),
                              builder.fmul(builder.fmul(d, tc), builder.fmul(o, builder.fsub(one, o))))
                        e.store(builder.fmul(dc_t, f), dc_, at)
                        total = builder.load(qa)
                        for gate, value in enumerate(da):
                            e.store(value, ga_, at_ga[gate])
                            at_db = e.index(e.mul(H_, gate), v * LANES)
                            e.store(builder.fadd(e.load(db_, at_db), value), db_, at_db)
                            total = e.fma(value, value, total)
                        builder.store(total, qa)
                        builder.store(e.fma(d, d, builder.load(qh)), qh)

            _emit_blocks(e, rows_, vectors, block)
            _float64_sums(e, sums_, (e.fsum(builder.load(qh)), e.fsum(builder.load(qa))))

        _dispatch(e, _vectors(e, H_), emit)

    return sig, _float32_codegen(is32, body)
