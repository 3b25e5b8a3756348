"""Mean-field theory over the phase diagram: the chi_1 = 1 line and depth = k * xi_c curves.

Schoenholz et al. 2017: a network of depth L trains when L is below a few xi_c (about 6 xi_c in
their experiments), xi_c being the depth over which two inputs' correlation approaches its fixed
point c*. With q* the fixed point of the variance map (gradtui.theory.fixed_point), inputs
u_1 = sqrt(q*) z_1, u_2 = sqrt(q*) (c z_1 + sqrt(1 - c^2) z_2):

    c-map:  c_{l+1} = (sigma_w^2 E[phi(u_1) phi(u_2)] + sigma_b^2) / q*
    chi_c = sigma_w^2 E[phi'(u_1) phi'(u_2)] at c = c*,          xi_c = -1 / ln chi_c.

In the ordered phase c* = 1 and chi_c = chi_1(q*), so xi_c is gradtui.theory's depth scale
-1/ln chi_1(q*); in the chaotic phase c* < 1 and chi_c < 1 < chi_1. Both diverge at the
order-to-chaos boundary chi_1(q*) = 1 (gradtui.theory.critical_sigma_w2: 1.76 for tanh at
sigma_b^2 = 0.05). Expectations over (z_1, z_2) use 80 x 80 Gauss-Hermite nodes.
Assumes zero-mean pre-activations (model.bias_init = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from gradtui import theory

MULTIPLES = (1, 3, 6)  # depth = k * xi_c curves; 6 xi_c is the paper's bound on trainable depth
_Z, _W = hermegauss(80)
_W = _W / math.sqrt(2.0 * math.pi)
_Z1, _Z2 = np.meshgrid(_Z, _Z, indexing="ij")
_W2 = np.outer(_W, _W)


def _phi_dphi(activation: str, params: dict):
    s = theory._negative_slope(activation, params)
    if s is None:
        return theory._phi_dphi(activation, params)
    return (lambda z: np.where(z > 0, z, s * z)), (lambda z: np.where(z > 0, 1.0, s))


def correlation_depth_scale(activation: str, sigma_w2: float, sigma_b2: float, **params) -> float:
    """xi_c = -1/ln chi_c (layers); inf on the boundary, where chi_c = 1."""
    q = theory.fixed_point(activation, sigma_w2, sigma_b2, **params)
    if q <= 0.0 or q >= 1e200:
        return math.nan
    phi, dphi = _phi_dphi(activation, params)
    sd = math.sqrt(q)
    u1 = sd * _Z1

    def pair(c):
        return u1, sd * (c * _Z1 + math.sqrt(max(1.0 - c * c, 0.0)) * _Z2)

    chi1 = theory.chi1(activation, sigma_w2, q, **params)
    if chi1 <= 1.0:
        c_star = 1.0
        chi_c = chi1
    else:  # c* in [0, 1): the c-map's excess g(c) = c_map(c) - c is >= 0 at 0 and < 0 just below 1
        def excess(c):
            a, b = pair(c)
            return (sigma_w2 * float(np.sum(_W2 * phi(a) * phi(b))) + sigma_b2) / q_here - c

        q_here = sigma_w2 * float(np.sum(_W2 * phi(u1) ** 2)) + sigma_b2  # q* in this quadrature: c = 1 is exact
        lo, hi = 0.0, 1.0 - 1e-6
        if excess(hi) >= 0.0:  # numerically critical: c* = 1
            lo = hi
        for _ in range(40):  # bisection to 1e-12 of c
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if excess(mid) >= 0.0 else (lo, mid)
        c_star = 0.5 * (lo + hi)
        a, b = pair(c_star)
        chi_c = sigma_w2 * float(np.sum(_W2 * dphi(a) * dphi(b)))
    if chi_c <= 0.0:
        return 0.0
    return math.inf if abs(chi_c - 1.0) < 1e-12 else -1.0 / math.log(chi_c)


@dataclass(frozen=True)
class Overlay:
    """The theory curves over sigma_w^2: the boundary and depth = k * xi_c, for k in MULTIPLES."""

    activation: str
    sigma_b2: float
    critical: float  # sigma_w^2 where chi_1(q*) = 1
    sigma_w2: tuple  # a fine grid over the swept range
    xi_c: tuple  # xi_c at each of them

    def depth_curve(self, k: float) -> list[tuple[float, float]]:
        """(sigma_w2, k * xi_c) points of one curve, finite ones only."""
        return [(s, k * x) for s, x in zip(self.sigma_w2, self.xi_c) if math.isfinite(x)]


def overlay_for(cfg, lo: float, hi: float, points: int = 81) -> Overlay | None:
    """The overlay for cfg's activation and bias variance over sigma_w^2 in [lo, hi], or None when
    mean-field theory does not describe the network (recurrent, batch norm, residual, biased)."""
    m = cfg.model
    if m.kind != "mlp" or m.batchnorm or m.residual or m.bias_init != 0.0 or not hi > lo > 0:
        return None
    params = dict(leaky_slope=m.leaky_slope, prelu_init=m.prelu_init, elu_alpha=m.elu_alpha)
    sb2 = m.bias_std**2
    critical = theory.critical_sigma_w2(m.activation, sb2, **params)
    grid = np.linspace(lo, hi, points)
    if lo < critical < hi:  # sample right up to the divergence on both sides
        grid = np.unique(np.concatenate([grid, critical + (critical - lo) * -np.geomspace(1e-3, 1, 20),
                                         critical + (hi - critical) * np.geomspace(1e-3, 1, 20)]))
    xi = tuple(correlation_depth_scale(m.activation, float(s), sb2, **params) for s in grid)
    return Overlay(m.activation, sb2, critical, tuple(float(s) for s in grid), xi)
