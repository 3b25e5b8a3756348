"""The BLAS call the recurrent kernels make (gradtui.engine.gemm) and their fused training loop
(gradtui.engine.seq_train), each against a plain computation."""

import numpy as np
import pytest

import gradtui
from gradtui.engine.gemm import gemm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_gemm_matches_numpy_with_transposes_and_beta(dtype, trans_a, trans_b):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((7, 5) if trans_a else (5, 7)).astype(dtype)
    b = rng.standard_normal((3, 7) if trans_b else (7, 3)).astype(dtype)
    c = rng.standard_normal((5, 3)).astype(dtype)
    expected = (a.T if trans_a else a) @ (b.T if trans_b else b) + 0.5 * c
    gemm(a, b, c, trans_a, trans_b, 0.5)
    np.testing.assert_allclose(c, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_gemm_writes_into_a_row_strided_block_and_nothing_else():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 4)).astype(np.float32)
    wide = rng.standard_normal((4, 12)).astype(np.float32)
    out = np.full((4, 12), 7.0, np.float32)
    gemm(a, wide[:, 4:8], out[:, 8:12])  # beta = 0: the old values do not count, even NaN would not
    np.testing.assert_allclose(out[:, 8:12], a @ wide[:, 4:8], rtol=1e-5)
    assert (out[:, :8] == 7.0).all()


def test_gemm_refuses_shapes_that_do_not_match():
    a, b = np.ones((2, 3)), np.ones((4, 2))
    with pytest.raises(ValueError, match="shapes"):
        gemm(a, b, np.zeros((2, 2)))


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_one_fused_call_of_several_steps_gives_the_records_of_single_steps(kind):
    """Experiment.run(k) trains k steps in one kernel call; each record keeps its own time profile
    and forget-gate means, equal to those of k separate steps from the same start."""
    cfg = gradtui.load_config("vanishing-sigmoid").with_overrides({
        "model.kind": kind, "model.depth": 2, "model.width": 8, "model.activation": "tanh", "data.task": "adding",
        "data.seq_len": 12, "data.samples": 128, "train.batch_size": 8, "train.optimizer": "adam",
    })
    together = gradtui.Experiment(cfg).run(4)
    apart = [record for exp in [gradtui.Experiment(cfg)] for _ in range(4) for record in exp.run(1)]
    assert len(together) == len(apart) == 4
    assert len({r.time_delta_norm.tobytes() for r in together}) == 4  # every step its own profile
    for a, b in zip(together, apart):
        assert a.loss == b.loss
        np.testing.assert_array_equal(a.time_delta_norm, b.time_delta_norm)
        if kind == "lstm":
            np.testing.assert_array_equal(a.forget_gate_mean, b.forget_gate_mean)
        np.testing.assert_array_equal(a.grad_norm, b.grad_norm)


def test_gru_backward_keeps_float32_maths_in_float32():
    """A float literal in float32 arithmetic promotes it to float64 (slower, and not the
    precision the float32 path claims): the GRU backward's gate gradients stay float32, and
    agree with the float64 computation to float32 precision."""
    from numba import njit

    from gradtui.engine import gated_kernel
    from gradtui.engine.jit import FASTMATH

    T, B, H = 3, 2, 4
    rng = np.random.default_rng(2)
    shapes = [(H, 3 * H), (T + 1, B, H), (T, B, 3 * H), (T, B, H), (T, B, H), (T, B, 3 * H), (T, B, 3 * H),
              (B, H), (B, H), (H,)]
    inputs = [rng.uniform(0.1, 0.9, s) for s in shapes]
    fresh = njit(error_model="numpy", fastmath=FASTMATH)(gated_kernel.gru_backward.py_func)  # typed anew, not cached
    outputs = {}
    for dtype in (np.float32, np.float64):
        arrays = [a.astype(dtype) for a in inputs]
        fresh(*arrays, np.zeros(T), True)
        outputs[dtype] = arrays
    sig = next(s for s in fresh.signatures if s[0].dtype.name == "float32")
    typemap = fresh.overloads[sig].type_annotation.typemap
    gate_grads = {name: str(ty) for name, ty in typemap.items() if name.split(".")[0] in ("dn", "dr", "du")}
    assert gate_grads and set(gate_grads.values()) == {"float32"}, gate_grads
    for a32, a64 in zip(outputs[np.float32], outputs[np.float64]):
        np.testing.assert_allclose(a32, a64, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale", [1e25, 1e-25, 1.0, 0.0])
def test_float32_sums_of_squares_hold_exploding_and_vanishing_values(scale):
    """A float32 square overflows above ~1e19 and underflows below ~1e-19: the recurrent
    statistics and gradient norms must still come out as in float64 there (an overflowed
    norm once marked a finite IRNN step as non-finite and skipped its update)."""
    from gradtui.engine.rnn_kernel import sum_and_squares

    x = (np.random.default_rng(0).standard_normal(2048) * scale).astype(np.float32)
    s, q = sum_and_squares(x)
    exact = x.astype(np.float64)
    assert np.isfinite(q)
    np.testing.assert_allclose(q, np.sum(exact * exact), rtol=1e-5, atol=0)
    np.testing.assert_allclose(s, np.sum(exact), rtol=1e-4, atol=1e-6 * scale * np.sqrt(x.size))
