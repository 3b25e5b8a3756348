"""Mean-field prediction for a plain convolutional network at initialisation (Xiao et al. 2018).

For 3x3 convolutions with i.i.d. weights of variance Var(W) over fan-in n = 9 C_in, the
pre-activation z_l(i, c) at pixel i is Gaussian over the weights with a variance that depends
only on the previous layer's *diagonal* second moments in the window of i (Xiao et al. 2018,
eq. 2.5: the diagonal of the covariance evolves on its own):

    q_l(i) = Var(W_l) C_{l-1} sum_{t in window(i)} E[phi(z_{l-1})^2](t) + sigma_b^2,

and the back-propagated error delta_l = dL/dz_l has, per channel,

    g_l(t) = E[phi'(z_l)^2](t) Var(W_{l+1}) C_{l+1} sum_{i: t in window(i)} g_{l+1}(i).

Away from the borders every window has 9 pixels and a uniform profile q, g stays uniform:
the maps are the fully connected ones with sigma_w^2 = 9 C Var(W), so chi_1 is the MLP's
(the spatially uniform mode of Xiao et al.). Zero padding leaves border windows with 4 or 6
pixels; this module propagates the whole s x s profile, so the borders (and stride-2 steps)
are included. Global average pooling feeds the top layer a uniform error; the prediction is
||delta_1|| / ||delta_L|| = sqrt(C_1 sum g_1 / (C_L sum g_L)) (the records' delta_norm ratio).
Not covered: batch norm, residual blocks (see gradtui.theory.predict's reasons).
"""

from __future__ import annotations

import math

import numpy as np

from gradtui.config.cnn_plan import KERNEL, image_side, plan


def window_sum(profile: np.ndarray, stride: int, side_out: int) -> np.ndarray:
    """out(o) = sum of ``profile`` over the 3x3 window of output pixel o (zero padding, stride)."""
    padded = np.pad(profile, 1)
    out = np.zeros((side_out, side_out))
    for ky in range(KERNEL):
        for kx in range(KERNEL):
            out += padded[ky : ky + stride * side_out : stride, kx : kx + stride * side_out : stride][:side_out, :side_out]
    return out


def window_adjoint(profile: np.ndarray, stride: int, side_in: int) -> np.ndarray:
    """The adjoint of window_sum: in(t) = sum of ``profile`` over the outputs whose window holds t."""
    side_out = profile.shape[0]
    padded = np.zeros((side_in + 2, side_in + 2))
    for ky in range(KERNEL):
        for kx in range(KERNEL):
            padded[ky : ky + stride * side_out : stride, kx : kx + stride * side_out : stride][:side_out, :side_out] += profile
    return padded[1:-1, 1:-1]


def profile_prediction(cfg, weight_var, moments, input_second_moment: float = 1.0):
    """(q profiles, per-layer ||delta||^2 totals) of a plain CNN config, input to output.

    ``weight_var(init, fan_in, fan_out, init_std, gain)`` and ``moments(activation, q, mean,
    **params)`` are gradtui.theory's (passed in to keep one definition of each)."""
    m = cfg.model
    params = dict(leaky_slope=m.leaky_slope, prelu_init=m.prelu_init, elu_alpha=m.elu_alpha)
    layers = plan(m.depth, m.width, m.stages, False, image_side(cfg))
    cache: dict[float, tuple[float, float]] = {}

    def moment_map(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e2, d2 = np.empty_like(q), np.empty_like(q)
        for idx, value in np.ndenumerate(q):
            key = float(value)
            if key not in cache:
                cache[key] = moments(m.activation, key, m.bias_init, **params)
            e2[idx], d2[idx] = cache[key]
        return e2, d2

    sb2 = m.bias_std ** 2
    second = np.full((layers[0].side_in, layers[0].side_in), input_second_moment)
    qs, slopes, vars_ = [], [], []
    for spec in layers:
        var = weight_var(m.init, KERNEL * KERNEL * spec.c_in, KERNEL * KERNEL * spec.c_out, m.init_std, m.init_gain)
        q = var * spec.c_in * window_sum(second, spec.stride, spec.side_out) + sb2
        second, d2 = moment_map(q)
        qs.append(q)
        slopes.append(d2)
        vars_.append(var)
    g = slopes[-1].copy()  # uniform error from global average pooling, times phi'^2
    totals = [0.0] * len(layers)
    totals[-1] = float(g.sum()) * layers[-1].c_out
    for l in range(len(layers) - 2, -1, -1):
        above = layers[l + 1]
        g = slopes[l] * vars_[l + 1] * above.c_out * window_adjoint(g, above.stride, above.side_in)
        totals[l] = float(g.sum()) * layers[l].c_out
    return qs, totals


def attenuation_and_factors(totals: list[float]) -> tuple[float, tuple]:
    """||delta_1|| / ||delta_L|| and the per-transition factors on ||delta||^2 (input to output)."""
    factors = tuple(totals[l] / totals[l + 1] for l in range(len(totals) - 1))
    ratio = totals[0] / totals[-1] if totals[-1] > 0 else math.nan
    return math.sqrt(ratio) if ratio >= 0 else math.nan, factors
