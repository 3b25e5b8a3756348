"""What mean-field theory predicts about gradients at initialisation, from the config alone.

Notation (Poole et al. 2016; Schoenholz et al. 2017): hidden layer l = 1..L computes
z_l = h_{l-1} W_l + b_l, h_l = phi(z_l), h_0 = x. For a wide layer the pre-activations
are Gaussian over the random weights, z_l ~ N(mu, q_l), with

    sigma_w^2 = fan_in * Var(W),   sigma_b^2 = Var(b) = bias_std^2,   mu = bias_init,
    q_{l+1}   = sigma_w^2 E[phi(mu + sqrt(q_l) Z)^2] + sigma_b^2,       Z ~ N(0, 1).

The back-propagated gradient delta_l = dL/dz_l = (delta_{l+1} W_{l+1}^T) * phi'(z_l) obeys
||delta_l||^2 ~= n_l Var(W_{l+1}) E[phi'(z_l)^2] ||delta_{l+1}||^2 = chi_1(q_l) ||delta_{l+1}||^2,
chi_1(q) = sigma_w^2 E[phi'(mu + sqrt(q) Z)^2], for the hidden-to-hidden W_{l+1} (fan_in = width).
Hence ||delta_1|| / ||delta_L|| ~= sqrt(prod_{l=1}^{L-1} chi_1(q_l)): transition l+1 -> l uses
sigma_w^2 of W_{l+1} and the moment at layer l's q_l. The depth scale is xi = -1/ln chi_1(q*)
at the fixed point q* of the q-map: positive = gradients shrink e-fold every xi layers
(ordered phase), negative = they grow e-fold every |xi| layers (chaotic phase), infinite at
criticality (chi_1 = 1). A constant bias shift mu = bias_init is tracked as the mean of z
(exact in the mean-field limit: every unit's pre-activation has mean mu over the weights),
not folded into sigma_b^2, since N(mu, q) and N(0, q + mu^2) give different moments.

Gaussian expectations use 100-point Gauss-Hermite quadrature (probabilists' weights divided by
sqrt(2 pi)); the even count puts no node at 0, so the symmetric kinks of ReLU-type functions
integrate exactly. relu, leaky_relu, prelu (its initial slope) and linear use closed forms.
The prediction does not apply with batch norm, residual connections or recurrent nets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from gradtui.config.cnn_plan import hidden_fan_in

_NODES, _WEIGHTS = hermegauss(100)
_WEIGHTS = _WEIGHTS / math.sqrt(2.0 * math.pi)
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(100)
_INPUT_DIM = {"spirals": 2, "moons": 2, "circles": 2, "xor": 2}


def gauss_mean(f, mean: float = 0.0, var: float = 1.0, kink: float | None = None) -> float:
    """E[f(X)] for X ~ N(mean, var), f taking a numpy array.

    sd <= 1: Gauss-Hermite in z (X = mean + sd z); if f has a kink at X = kink, Gauss-Legendre
    (100 nodes) on each side of it over z in [-14, 14] instead, since a kink inside the node
    range costs Gauss-Hermite ~0.5% (ELU's phi'^2). sd > 1: the Hermite nodes would step over
    the unit-width bump of tanh' or sigmoid', so use the trapezoid rule on u = sinh(t), t = k dt,
    dt = 0.003: spacing 0.003 near the nonlinearity at 0, ~0.003|u| in the tails; u = 0 is a
    node, where a kink at 0 gets the average of both one-sided values.
    """
    sd = math.sqrt(max(var, 0.0))
    z0 = None if kink is None or sd == 0.0 else (kink - mean) / sd
    if sd <= 1.0 and (z0 is None or abs(z0) >= 14.0):
        return float(np.dot(_WEIGHTS, f(mean + sd * _NODES)))
    if sd <= 1.0:
        total = 0.0
        for a, b in ((-14.0, z0), (z0, 14.0)):
            z = 0.5 * (b - a) * _GL_NODES + 0.5 * (a + b)
            total += 0.5 * (b - a) * float(np.dot(_GL_WEIGHTS, f(mean + sd * z) * np.exp(-0.5 * z * z)))
        return total / math.sqrt(2.0 * math.pi)
    dt = 0.003
    t = dt * np.arange(math.floor(math.asinh(mean - 14 * sd) / dt), math.ceil(math.asinh(mean + 14 * sd) / dt) + 1)
    u = np.sinh(t)
    vals = f(u)
    if kink == 0.0 and t[0] <= 0.0 <= t[-1]:  # the kink is the node u = 0: average both sides
        vals[np.argmin(np.abs(t))] = float(np.mean(f(np.array([-1e-12, 1e-12]))))
    dens = np.exp(-0.5 * ((u - mean) / sd) ** 2) / (sd * math.sqrt(2.0 * math.pi))
    return float(np.sum(vals * dens * np.cosh(t)) * dt)


def _negative_slope(activation: str, params: dict) -> float | None:
    """The slope s for z < 0 of a piecewise-linear phi (slope 1 for z > 0), or None if smooth."""
    return {
        "relu": 0.0,
        "linear": 1.0,
        "leaky_relu": params.get("leaky_slope", 0.01),
        "prelu": params.get("prelu_init", 0.25),
    }.get(activation)


def _phi_dphi(activation: str, params: dict):
    """(phi, phi') of a smooth activation as numpy functions."""
    if activation == "tanh":
        return np.tanh, lambda z: 1.0 - np.tanh(z) ** 2
    if activation == "sigmoid":
        sig = lambda z: 0.5 * (1.0 + np.tanh(0.5 * z))  # noqa: E731  (overflow-free sigmoid)
        return sig, lambda z: sig(z) * (1.0 - sig(z))
    if activation == "elu":
        a = params.get("elu_alpha", 1.0)
        e = lambda z: np.exp(np.minimum(z, 0.0))  # noqa: E731
        return (lambda z: np.where(z > 0, z, a * (e(z) - 1.0))), (lambda z: np.where(z > 0, 1.0, a * e(z)))
    raise ValueError(f"unknown activation {activation!r}")


def moments(activation: str, q: float, mean: float = 0.0, **activation_params) -> tuple[float, float]:
    """(E[phi(z)^2], E[phi'(z)^2]) for z ~ N(mean, q).

    Piecewise linear with slope 1 (z > 0) and s (z < 0), a = mean/sqrt(q), P = Phi(a):
    E[phi'^2] = P + s^2 (1 - P);  E[phi^2] = A + s^2 B with A = (mean^2 + q) P + mean sqrt(q) pdf(a),
    B = (mean^2 + q)(1 - P) - mean sqrt(q) pdf(a). At mean 0 both are q (1 + s^2)/2 and (1 + s^2)/2.
    """
    s = _negative_slope(activation, activation_params)
    if s is None:
        phi, dphi = _phi_dphi(activation, activation_params)
        kink = 0.0 if activation == "elu" else None
        return gauss_mean(lambda z: phi(z) ** 2, mean, q, kink), gauss_mean(lambda z: dphi(z) ** 2, mean, q, kink)
    if q <= 0.0:  # deterministic z = mean; at exactly 0 take the average of both sides
        d2 = 1.0 if mean > 0 else s * s if mean < 0 else 0.5 * (1.0 + s * s)
        return mean * mean * d2, d2
    sd = math.sqrt(q)
    a = mean / sd
    big_p = 0.5 * (1.0 + math.erf(a / math.sqrt(2.0)))
    pdf = math.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)
    pos = (mean * mean + q) * big_p + mean * sd * pdf
    neg = (mean * mean + q) * (1.0 - big_p) - mean * sd * pdf
    return pos + s * s * neg, big_p + s * s * (1.0 - big_p)


def chi1(activation: str, sigma_w2: float, q: float, mean: float = 0.0, **activation_params) -> float:
    """chi_1 = sigma_w^2 E[phi'(z)^2], z ~ N(mean, q): the factor on ||delta||^2 per layer."""
    return sigma_w2 * moments(activation, q, mean, **activation_params)[1]


def q_map(activation: str, sigma_w2: float, sigma_b2: float, q: float, mean: float = 0.0, **activation_params) -> float:
    """One step of the variance map: q_{l+1} = sigma_w^2 E[phi(z)^2] + sigma_b^2, z ~ N(mean, q)."""
    return sigma_w2 * moments(activation, q, mean, **activation_params)[0] + sigma_b2


def fixed_point(activation, sigma_w2, sigma_b2, mean=0.0, **activation_params) -> float:
    """The fixed point q* = q_map(q*), by bisection on log q of g(q) = q_map(q) - q.

    q* = 0 when q = 0 is a fixed point (phi(mean) = 0, sigma_b = 0) and g < 0 just above it;
    1e200 stands for "q grows without bound" (e.g. ReLU with sigma_w^2 > 2).
    """
    g = lambda q: q_map(activation, sigma_w2, sigma_b2, q, mean, **activation_params) - q  # noqa: E731
    hi = 1.0
    while g(hi) > 0.0:
        if hi >= 1e200:
            return hi
        hi *= 1e4
    lo = 1e-12 * min(hi, 1.0)
    while g(lo) <= 0.0:
        if lo < 1e-280:
            return 0.0
        lo *= 1e-10
    lo, hi = math.log(lo), math.log(hi)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if g(math.exp(mid)) > 0.0 else (lo, mid)
    return math.exp(0.5 * (lo + hi))


def critical_sigma_w2(activation: str, sigma_b2: float = 0.0, **activation_params) -> float:
    """sigma_w^2 on the order-to-chaos boundary, chi_1(q*) = 1.

    Piecewise linear: chi_1 = sigma_w^2 (1 + s^2)/2 whatever q, so 2/(1 + s^2). Smooth phi:
    parametrise the fixed point by q* (sigma_w^2 = (q* - sigma_b^2)/E[phi^2]) and bisect on
    log q* for chi_1 = 1 (Schoenholz et al. 2017). tanh at sigma_b = 0 gives the limit q* -> 0: 1.
    """
    s = _negative_slope(activation, activation_params)
    if s is not None:
        return 2.0 / (1.0 + s * s)

    def excess(log_q):
        q = math.exp(log_q)
        e2, d2 = moments(activation, q, **activation_params)
        return (q - sigma_b2) / e2 * d2 - 1.0, (q - sigma_b2) / e2

    lo, hi = math.log(max(sigma_b2, 1e-12) * (1 + 1e-9)), math.log(1e8)
    if excess(lo)[0] >= 0.0:
        return excess(lo)[1]
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if excess(mid)[0] < 0.0 else (lo, mid)
    return excess(hi)[1]


def weight_var(init: str, fan_in: int, fan_out: int, init_std: float = 0.01, gain: float = 1.0) -> float:
    """Var(W) of one weight under the init scheme; init_gain multiplies the std (Var by gain^2)."""
    base = {
        "standard": 1.0 / (3.0 * fan_in),  # U[-1/sqrt(fan_in), 1/sqrt(fan_in)]
        "normal": init_std**2,
        "xavier": 2.0 / (fan_in + fan_out),
        "xavier_normal": 2.0 / (fan_in + fan_out),
        "he": 2.0 / fan_in,
        "he_uniform": 2.0 / fan_in,
        "lecun": 1.0 / fan_in,
        "orthogonal": 1.0 / max(fan_in, fan_out),  # orthonormal rows or columns
    }[init]
    return base * gain * gain


@dataclass(frozen=True)
class Prediction:
    """Mean-field prediction at initialisation; see the module docstring for the maths."""

    applies: bool
    reason: str = ""
    chi1: tuple = ()  # chi_1(q_l) for transitions l+1 -> l, l = 1..L-1 (input-to-output order)
    q: tuple = ()  # q_l per hidden layer l = 1..L
    attenuation: float = math.nan  # predicted ||delta_1|| / ||delta_L||
    depth_scale: float = math.nan  # -1/ln chi_1(q*); inf at criticality
    sigma_w2: float = math.nan
    sigma_b2: float = math.nan
    chi1_star: float = math.nan  # chi_1 at the fixed point q*

    def summary(self) -> str:
        """One plain-English sentence."""
        if not self.applies:
            return f"theory: {self.reason}"
        layers = len(self.q)
        if self.chi1:
            mean_chi = math.exp(sum(math.log(max(c, 1e-300)) for c in self.chi1) / len(self.chi1))
            head = f"each layer multiplies the gradient by ~{math.sqrt(mean_chi):.2g} (chi_1 = {mean_chi:.2g})"
        else:
            head = "a single hidden layer has no layer-to-layer factor"
        if math.isinf(self.depth_scale):
            tail = "critical (chi_1 -> 1 with depth): depth scale infinite"
        elif self.depth_scale >= 0:
            tail = f"depth scale {self.depth_scale:.2g} layers"
        else:
            tail = f"deeper, chi_1 -> {self.chi1_star:.3g} and gradients grow e-fold every {-self.depth_scale:.2g} layers"
        return f"theory: {head}; predicted first/last = {self.attenuation:.2g} over {layers} layers; {tail}"


def predict(cfg, input_second_moment: float = 1.0) -> Prediction:
    """The mean-field prediction for an MLP config.

    The first hidden layer's fan_in is the data dimension (2 for the 2-D tasks, data.features
    for teacher), so q_1 = sigma_w,first^2 * E[x^2] + sigma_b^2 with E[x^2] = input_second_moment
    per feature, assumed 1 (the tasks standardise their inputs) unless given. Layers 2..L use
    sigma_w^2 with fan_in = fan_out = width. With 2-D inputs each example's own q_1 varies with
    ||x||^2, which the single q_1 ignores; it matters most when q_1 is tiny and chi_1 > 1.
    """
    m, kind = cfg.model, cfg.model.kind
    if kind == "transformer":
        return Prediction(False, "the simple mean-field prediction does not apply to a transformer network: "
                                 "attention mixes the tokens and LayerNorm rescales every row, which the "
                                 "layer-wise variance map of independent units ignores")
    if kind not in ("mlp", "cnn"):
        return Prediction(False, f"the simple mean-field prediction does not apply to a {kind} network: "
                                 "its gradient flows through time with shared weights, not through independent layers")
    params = dict(leaky_slope=m.leaky_slope, prelu_init=m.prelu_init, elu_alpha=m.elu_alpha)
    n = hidden_fan_in(m)  # width, or 3*3*width for a convolution
    sw2 = n * weight_var(m.init, n, n, m.init_std, m.init_gain)
    sb2 = m.bias_std**2
    if m.batchnorm:
        return Prediction(False, "the simple mean-field prediction does not apply with batch norm: it renormalises "
                                 "every pre-activation by batch statistics, which the layer-wise variance map ignores",
                          sigma_w2=sw2, sigma_b2=sb2)
    if m.residual:
        return Prediction(False, "the simple mean-field prediction does not apply with residual connections: the "
                                 "skip path adds an identity term, so the per-layer factor is not chi_1",
                          sigma_w2=sw2, sigma_b2=sb2)
    if kind == "cnn":
        return _predict_cnn(cfg, sw2, sb2, input_second_moment)
    d_in = cfg.data.features if cfg.data.task == "teacher" else _INPUT_DIM.get(cfg.data.task, 2)
    mu = m.bias_init
    qs = [d_in * weight_var(m.init, d_in, n, m.init_std, m.init_gain) * input_second_moment + sb2]
    for _ in range(m.depth - 1):
        qs.append(q_map(m.activation, sw2, sb2, qs[-1], mu, **params))
    chis = tuple(chi1(m.activation, sw2, q, mu, **params) for q in qs[:-1])
    attenuation = math.sqrt(math.prod(chis)) if chis else 1.0
    q_star = fixed_point(m.activation, sw2, sb2, mu, **params)
    c_star = chi1(m.activation, sw2, q_star, mu, **params)
    if abs(c_star - 1.0) <= 1e-9:
        xi = math.inf
    elif c_star <= 0.0:
        xi = 0.0
    else:
        xi = -1.0 / math.log(c_star)
    return Prediction(True, "", chis, tuple(qs), attenuation, xi, sw2, sb2, c_star)


def _depth_scale(activation, sw2, sb2, mu, params) -> tuple[float, float]:
    """(xi, chi_1 at the fixed point q*) of the uniform mode."""
    q_star = fixed_point(activation, sw2, sb2, mu, **params)
    c_star = chi1(activation, sw2, q_star, mu, **params)
    if abs(c_star - 1.0) <= 1e-9:
        return math.inf, c_star
    return (0.0 if c_star <= 0.0 else -1.0 / math.log(c_star)), c_star


def _predict_cnn(cfg, sw2: float, sb2: float, input_second_moment: float) -> Prediction:
    """A plain CNN: the spatial profiles of gradtui.theory_cnn (zero padding and stride-2 steps
    included); the depth scale is the uniform mode's, whose chi_1 is the MLP's with
    sigma_w^2 = 9 C Var(W) (Xiao et al. 2018). q lists each layer's mean over pixels."""
    from gradtui.theory_cnn import attenuation_and_factors, profile_prediction

    m = cfg.model
    params = dict(leaky_slope=m.leaky_slope, prelu_init=m.prelu_init, elu_alpha=m.elu_alpha)
    qs, totals = profile_prediction(cfg, weight_var, moments, input_second_moment)
    attenuation, factors = attenuation_and_factors(totals)
    xi, c_star = _depth_scale(m.activation, sw2, sb2, m.bias_init, params)
    return Prediction(True, "", factors, tuple(float(q.mean()) for q in qs), attenuation, xi, sw2, sb2, c_star)


def prediction_fields(cfg) -> dict:
    """The fields of a record's "prediction" event for cfg: applies, reason, summary and the
    figures (NaN and infinities as the record's strings). Never raises: a config the theory
    cannot handle gives ``applies: False`` with the reason."""
    from gradtui.record import plain

    try:
        p = predict(cfg)
    except Exception as err:  # noqa: BLE001 - the theory is an aside; it must not stop training
        return {"applies": False, "reason": f"no prediction ({type(err).__name__}: {err})"}
    return {"applies": p.applies, "reason": p.reason, "summary": p.summary(),
            **plain({"attenuation": p.attenuation, "depth_scale": p.depth_scale, "chi1_star": p.chi1_star})}
