"""The attention's building blocks: BLAS on blocks of larger arrays, the float32 exp, the softmax
with its entropy."""

import numpy as np
import pytest
from numba import njit

from gradtui.engine.exp32 import softmax_exp
from gradtui.engine.head_gemm import head_nn, head_nt, head_softmax_grad, head_tn
from gradtui.engine.strided_gemm import gemm
from gradtui.engine.transformer_ops import _softmax_rows


@njit(cache=True)  # kept with the kernels in their cache: compiled once, not at every run
def _gemm_blocks(trans_a, trans_b, m, n, k, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc):
    gemm(trans_a, trans_b, m, n, k, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc)


@njit(cache=True)  # kept with the kernels in their cache: compiled once, not at every run
def _exp_all(x, out):
    for i in range(x.size):
        out[i] = softmax_exp(x[i])


def _blocks(dtype, size, trans_a, trans_b, seed):
    """a (50, 50), b (50, 60), c (20, 70) with op(A) (m, k) stored from row 3, column 5 of a,
    op(B) (k, n) from row 2, column 7 of b, C from row 1, column 2 of c; returns the arrays,
    the blocks' (flat offset, row stride) pairs as BLAS takes them, C's slice and op(A) op(B)."""
    rng = np.random.default_rng(seed)
    m, n, k = size
    a = rng.standard_normal((50, 50)).astype(dtype)
    b = rng.standard_normal((50, 60)).astype(dtype)
    c = rng.standard_normal((20, 70)).astype(dtype)
    a_block = a[3 : 3 + (k if trans_a else m), 5 : 5 + (m if trans_a else k)]
    b_block = b[2 : 2 + (n if trans_b else k), 7 : 7 + (k if trans_b else n)]
    product = np.dot(a_block.T if trans_a else a_block, b_block.T if trans_b else b_block)
    places = (3 * 50 + 5, 50), (2 * 60 + 7, 60), (1 * 70 + 2, 70)
    return (a, b, c), places, (slice(1, 1 + m), slice(2, 2 + n)), product


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_gemm_on_blocks_matches_numpy(dtype, trans_a, trans_b, beta):
    """A (5, 3) product from blocks at offsets inside wider arrays; the rest of C untouched."""
    m, n, k = 5, 4, 3
    (a, b, c), ((ao, lda), (bo, ldb), (co, ldc)), block, product = _blocks(dtype, (m, n, k), trans_a, trans_b, 1)
    expected = c.copy()
    expected[block] = product + beta * c[block]
    _gemm_blocks(trans_a, trans_b, m, n, k, a, ao, lda, b, bo, ldb, beta, c, co, ldc)
    np.testing.assert_allclose(c, expected, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6)


def test_float32_exp_is_within_three_units_of_float32_rounding():
    """Relative error at most 3.5e-7 on [-87, 0] against float64 exp (NumPy's float32 exp: 2e-7);
    exactly 1 at 0 and 0 below -87, where exp is subnormal in float32."""
    x = -np.linspace(0.0, 87.0, 400_001).astype(np.float32)
    out = np.empty_like(x)
    _exp_all(x, out)
    exact = np.exp(x.astype(np.float64))
    assert np.max(np.abs(out - exact) / exact) <= 3.5e-7
    assert out[0] == 1.0
    low = np.array([-87.5, -100.0, -1e30, -np.inf], np.float32)
    _exp_all(low, out[:4])
    assert np.all(out[:4] == 0.0)


@njit(cache=True)  # kept with the kernels in their cache: compiled once, not at every run
def _plain_exp_all(x, out):
    for i in range(x.size):
        out[i] = np.exp(x[i])


def test_float64_exp_is_the_kernels_plain_exp():
    """float64 steps are untouched: the same exp a kernel's np.exp calls, bit for bit."""
    x = -np.linspace(0.0, 700.0, 10_001)
    out, plain = np.empty_like(x), np.empty_like(x)
    _exp_all(x, out)
    _plain_exp_all(x, plain)
    np.testing.assert_array_equal(out, plain)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("causal", [False, True])
def test_softmax_rows_and_their_entropy(dtype, rtol, causal):
    """Each row softmax(scale s) over the visible entries, 0 elsewhere, and the summed entropy
    -sum P ln P computed the direct way; 40 rows, more than one product of row sums."""
    rng = np.random.default_rng(2)
    T = 40
    S = (4.0 * rng.standard_normal((T, T))).astype(dtype)
    scale = 0.5
    visible = np.tril(np.ones((T, T), bool)) if causal else np.ones((T, T), bool)
    z = np.where(visible, S.astype(np.float64) * scale, -np.inf)
    P = np.exp(z - z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    entropy = -np.sum(np.where(P > 0, P * np.log(np.where(P > 0, P, 1.0)), 0.0))
    got = _softmax_rows(S, scale, causal)
    np.testing.assert_allclose(S, P, rtol=rtol, atol=1e-7 if dtype == np.float32 else 1e-15)
    assert got == pytest.approx(entropy, rel=rtol)


@njit(cache=True)  # kept with the kernels in their cache: compiled once, not at every run
def _head_product(form, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc):
    if form == "nn":
        head_nn(m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc)
    elif form == "nt":
        head_nt(m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc)
    else:
        head_tn(m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("form", ["nn", "nt", "tn"])
@pytest.mark.parametrize("size", [(16, 16, 16), (16, 8, 16), (16, 16, 8), (16, 8, 8), (16, 8, 40), (5, 4, 3)])
def test_head_products_equal_numpy_on_blocks(dtype, form, size):
    """op(A) op(B) on blocks at offsets inside wider arrays (row strides 50, 60, 70), equal to
    np.dot to float32 rounding; the rest of C untouched. float32 with m = 16 and n, k in {8, 16}
    takes the vector path, other sizes and float64 BLAS."""
    m, n, k = size
    (a, b, c), ((ao, lda), (bo, ldb), (co, ldc)), block, product = _blocks(dtype, size, form[0] == "t",
                                                                          form[1] == "t", 3)
    expected = c.copy()
    expected[block] = product
    _head_product(form, m, n, k, a, ao, lda, b, bo, ldb, c, co, ldc)
    np.testing.assert_allclose(c, expected, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-5)
    outside = np.ones(c.shape, bool)
    outside[block] = False
    np.testing.assert_array_equal(c[outside], expected[outside])


@njit(cache=True)  # kept with the kernels in their cache: compiled once, not at every run
def _softmax_grad(m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc, p, p_off, ldp, scale):
    return head_softmax_grad(m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc, p, p_off, ldp, scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [16, 8, 5])
def test_head_softmax_grad_gives_dS_on_the_vector_path_and_dP_off_it(dtype, k):
    """dP = A B^T from blocks inside wider arrays; float32 with a 16 x 16 result returns True and
    C = P * (dP - rowsum(P * dP)) scale, anything else returns False and C = dP (BLAS)."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((30, 40)).astype(dtype)
    b = rng.standard_normal((30, 50)).astype(dtype)
    c = np.zeros((20, 24), dtype)
    logits = rng.standard_normal((3, 16, 16))
    probs = (np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)).astype(dtype)
    dp = a[2:18, 3 : 3 + k].astype(np.float64) @ b[4:20, 6 : 6 + k].astype(np.float64).T
    pb = probs[1].astype(np.float64)
    ds = pb * (dp - (pb * dp).sum(axis=1, keepdims=True)) * 0.25
    vectorised = _softmax_grad(16, 16, k, a, 2 * 40 + 3, 40, b, 4 * 50 + 6, 50, c, 1 * 24 + 4, 24,
                               probs, 256, 16, dtype(0.25))
    assert vectorised == (dtype == np.float32 and k in (8, 16))
    np.testing.assert_allclose(c[1:17, 4:20], ds if vectorised else dp, rtol=1e-5, atol=1e-5)
    assert not c[0].any() and not c[17:].any() and not c[:, :4].any() and not c[:, 20:].any()
