"""Mean-field predictions (gradtui.theory): closed forms, quadrature, criticality, and the engine."""

import math

import numpy as np
import pytest

import gradtui
from gradtui import theory
from gradtui.config import build_config

WIDTH = 512


def mlp(**model):
    """A spirals MLP config with the given model keys (float64 so the engine test is exact)."""
    return build_config({"model": model, "train": {"dtype": "float64"}})


# -- closed forms: only float rounding separates these from the exact values, hence 1e-9 ----------
@pytest.mark.parametrize("q", [1e-8, 0.3, 1.0, 7.0, 1e6])
def test_relu_he_is_critical_and_xavier_halves(q):
    he = WIDTH * theory.weight_var("he", WIDTH, WIDTH)
    xavier = WIDTH * theory.weight_var("xavier", WIDTH, WIDTH)
    assert he == pytest.approx(2.0, abs=1e-12) and xavier == pytest.approx(1.0, abs=1e-12)
    assert theory.chi1("relu", he, q) == pytest.approx(1.0, abs=1e-9)
    assert theory.chi1("relu", xavier, q) == pytest.approx(0.5, abs=1e-9)


def test_predict_relu_he_and_xavier():
    he = theory.predict(mlp(activation="relu", init="he", width=WIDTH, depth=12))
    assert he.applies and len(he.chi1) == 11 and len(he.q) == 12
    assert all(abs(c - 1.0) < 1e-9 for c in he.chi1)
    assert he.attenuation == pytest.approx(1.0, abs=1e-9) and math.isinf(he.depth_scale)
    xa = theory.predict(mlp(activation="relu", init="xavier", width=WIDTH, depth=12))
    assert all(abs(c - 0.5) < 1e-9 for c in xa.chi1)
    # 11 transitions, each multiplying ||delta|| by sqrt(1/2); depth scale -1/ln(1/2).
    assert xa.attenuation == pytest.approx(0.5**5.5, rel=1e-9)
    assert xa.depth_scale == pytest.approx(1.0 / math.log(2.0), rel=1e-9)


def test_indexing_on_a_linear_network():
    # phi = identity: chi_1 = sigma_w^2 at every layer and q_{l+1} = sigma_w^2 q_l + sigma_b^2 exactly.
    std = math.sqrt(0.9 / 64)
    p = theory.predict(mlp(activation="linear", init="normal", init_std=std, bias_std=0.1, width=64, depth=5))
    assert p.sigma_w2 == pytest.approx(0.9, rel=1e-12) and p.sigma_b2 == pytest.approx(0.01, rel=1e-12)
    q = [2 * std**2 + 0.01]  # first layer: fan_in 2 (spirals), unit-variance inputs
    for _ in range(4):
        q.append(0.9 * q[-1] + 0.01)
    assert p.q == pytest.approx(q, rel=1e-12)
    assert p.chi1 == pytest.approx([0.9] * 4, rel=1e-12)
    assert p.attenuation == pytest.approx(0.9**2, rel=1e-12)  # sqrt(0.9^4)


# -- quadrature ---------------------------------------------------------------------------------
@pytest.mark.parametrize("q", [1e-6, 0.3, 1.0])
def test_gauss_hermite_matches_relu_closed_form(q):
    # 100 nodes (even: none at the kink 0) integrate z^2 exactly and split symmetrically, so the
    # only error is rounding: 1e-10 is generous.
    relu2 = theory.gauss_mean(lambda z: np.maximum(z, 0.0) ** 2, 0.0, q)
    drelu2 = theory.gauss_mean(lambda z: (z > 0) * 1.0, 0.0, q)
    assert relu2 == pytest.approx(q / 2, abs=1e-10 * max(q, 1.0))
    assert drelu2 == pytest.approx(0.5, abs=1e-10)
    assert theory.moments("relu", q) == pytest.approx((q / 2, 0.5), abs=1e-10 * max(q, 1.0))


@pytest.mark.parametrize("slope,mean,q", [(0.0, 0.5, 0.3), (0.1, -0.7, 0.8), (0.25, 1.3, 0.04), (0.1, 0.5, 100.0)])
def test_shifted_piecewise_linear_closed_form_matches_quadrature(slope, mean, q):
    # bias_init shifts z ~ N(mean, q). Split Gauss-Legendre (q <= 1) is exact to rounding for
    # piecewise polynomials; the sinh-trapezoid (q > 1) to ~1e-8 on these smooth-enough integrands.
    e2, d2 = theory.moments("leaky_relu", q, mean, leaky_slope=slope)
    lk = lambda z: np.where(z > 0, z, slope * z)  # noqa: E731
    assert e2 == pytest.approx(theory.gauss_mean(lambda z: lk(z) ** 2, mean, q, 0.0), rel=1e-7)
    assert d2 == pytest.approx(theory.gauss_mean(lambda z: np.where(z > 0, 1.0, slope) ** 2, mean, q, 0.0), rel=1e-7)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "elu"])
@pytest.mark.parametrize("mean,q", [(0.0, 0.01), (0.0, 1.0), (0.4, 3.0), (0.0, 100.0), (-1.0, 1e4)])
def test_smooth_moments_match_dense_trapezoid(activation, mean, q):
    # A 2-million-point trapezoid over +-14 sd is accurate to ~1e-9 here; our rules (Gauss-Hermite,
    # split Gauss-Legendre at ELU's kink, sinh-trapezoid for sd > 1) measured <= 1e-6: tolerance 1e-5.
    phi, dphi = theory._phi_dphi(activation, {"elu_alpha": 1.0})
    sd = math.sqrt(q)
    u = np.linspace(mean - 14 * sd, mean + 14 * sd, 2_000_001)
    w = np.exp(-0.5 * ((u - mean) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
    e2, d2 = theory.moments(activation, q, mean)
    assert e2 == pytest.approx(np.trapezoid(phi(u) ** 2 * w, u), rel=1e-5)
    assert d2 == pytest.approx(np.trapezoid(dphi(u) ** 2 * w, u), rel=1e-5)


# -- criticality --------------------------------------------------------------------------------
@pytest.mark.parametrize("sw2", [0.5, 0.99, 1.0, 1.01, 1.5])
def test_tanh_chi1_at_tiny_q_is_sigma_w2(sw2):
    # E[tanh'(sqrt(q) z)^2] = 1 - 2q + O(q^2): at q = 1e-8 the relative error is 2e-8 < 1e-6.
    assert theory.chi1("tanh", sw2, 1e-8) == pytest.approx(sw2, rel=1e-6)


def test_tanh_order_to_chaos_at_sigma_b_zero():
    # Poole et al. 2016, Schoenholz et al. 2017: at sigma_b = 0 the tanh transition is sigma_w^2 = 1.
    # Below: q* = 0 is the stable fixed point and chi_1(q*) = sigma_w^2 < 1 (ordered).
    assert theory.fixed_point("tanh", 0.95, 0.0) == 0.0
    assert theory.chi1("tanh", 0.95, 0.0) == pytest.approx(0.95, abs=1e-12)
    # Above: q* > 0, and chi_1(q*) > 1 (chaotic; gradients explode), though below sigma_w^2.
    # (Not < 1: the q* > 0 branch at sigma_b = 0 lies entirely in the chaotic phase.)
    for sw2 in (1.05, 1.5, 2.0):
        q_star = theory.fixed_point("tanh", sw2, 0.0)
        assert q_star > 0.0
        assert q_star == pytest.approx(theory.q_map("tanh", sw2, 0.0, q_star), rel=1e-9)
        assert 1.0 < theory.chi1("tanh", sw2, q_star) < sw2
    assert theory.critical_sigma_w2("tanh", 0.0) == pytest.approx(1.0, abs=1e-6)
    # Schoenholz et al. 2017 train at the critical point sigma_w^2 = 1.76, sigma_b^2 = 0.05 (2 d.p.).
    assert theory.critical_sigma_w2("tanh", 0.05) == pytest.approx(1.76, abs=0.005)
    assert theory.critical_sigma_w2("relu", 0.3) == 2.0
    assert theory.critical_sigma_w2("leaky_relu", 0.0, leaky_slope=0.5) == pytest.approx(1.6)


# -- where the simple theory does not apply -----------------------------------------------------
@pytest.mark.parametrize("raw,word", [
    ({"model": {"batchnorm": True}}, "batch norm"),
    ({"model": {"residual": True}}, "residual"),
    ({"model": {"kind": "lstm"}, "data": {"task": "adding"}}, "lstm"),
    ({"model": {"kind": "rnn"}, "data": {"task": "copy"}}, "rnn"),
])
def test_does_not_apply(raw, word):
    p = theory.predict(build_config(raw))
    assert not p.applies
    assert "does not apply" in p.reason and word in p.reason
    assert p.summary() == f"theory: {p.reason}"
    assert p.chi1 == () and math.isnan(p.attenuation)


def test_summary_sentence():
    p = theory.predict(gradtui.load_config("vanishing-sigmoid"))
    s = p.summary()
    assert s.startswith("theory: each layer multiplies the gradient by ~") and "over 20 layers" in s
    assert f"{p.attenuation:.2g}" in s and "depth scale" in s
    assert "chi_1 -> 2 and gradients grow e-fold" in theory.predict(mlp(activation="linear", init="he")).summary()


# -- against the engine -------------------------------------------------------------------------
ENGINE_CASES = [
    # chaotic tanh (sigma_w^2 = 1.5); teacher inputs of 512 features so that every example's
    # ||x||^2/512 is ~1 (relative spread sqrt(2/512) = 6%), as the single q_1 assumes
    dict(model=dict(activation="tanh", init="normal", init_std=math.sqrt(1.5 / WIDTH), depth=15),
         data=dict(task="teacher", features=WIDTH)),
    # tanh at sigma_w^2 = 1 (xavier_normal), spirals
    dict(model=dict(activation="tanh", init="xavier_normal", depth=15)),
    # relu with xavier: chi_1 = 1/2, prediction 2^-7 over 14 transitions
    dict(model=dict(activation="relu", init="xavier", depth=15)),
    # elu (quadrature with a kink)
    dict(model=dict(activation="elu", init="xavier_normal", depth=15)),
    # a constant bias shift, tracked as the mean of z: predicted ~1e-5
    dict(model=dict(activation="tanh", init="standard", bias_init=0.5, depth=15)),
]


@pytest.mark.parametrize("raw", ENGINE_CASES, ids=["tanh-chaotic", "tanh-xavier", "relu-xavier", "elu", "bias-init"])
def test_prediction_matches_a_fresh_network(raw):
    # Tolerance: ||delta_l||^2 / ||delta_{l+1}||^2 fluctuates about chi_1 by ~sqrt(2/width) = 6%
    # from the finite random weights (the batch does not average that away: all examples share
    # the weights), i.e. ~0.03 in ln||delta|| per transition; over 14 transitions a random walk
    # gives at most ~0.03*sqrt(14) = 0.12 per seed (measured 0.01-0.13). The mean over 4 seeds
    # has standard error <= 0.06, plus an O(1/width) bias (measured |err| <= 0.08 here), so
    # |ln(measured/predicted)| < 0.25 is about 4 standard errors. A wrong fan or sigma_w^2 by a
    # factor 2, a missing phi', or ignoring bias_init moves the prediction by far more than 0.25
    # in the relu/bias cases; an off-by-one layer costs ln sqrt(2) = 0.35 in the relu case.
    raw = {**raw, "model": {**raw["model"], "width": WIDTH}, "train": {"dtype": "float64"}}
    cfg = build_config(raw)
    depth = cfg.model.depth
    pred = theory.predict(cfg)
    assert pred.applies
    logs = []
    for seed in range(4):
        exp = gradtui.Experiment(cfg.with_overrides({"train.seed": seed}))
        rec = exp.step()  # statistics are computed on the initial weights, before the update
        dn = np.asarray(rec.delta_norm)
        assert dn.shape == (depth + 1,)  # hidden layers input to output, then the output layer
        logs.append(math.log(dn[0] / dn[depth - 1]))
    err = float(np.mean(logs)) - math.log(pred.attenuation)
    assert abs(err) < 0.25, f"measured {math.exp(np.mean(logs)):.4g} vs predicted {pred.attenuation:.4g}"
