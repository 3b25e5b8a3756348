"""Activation functions phi and their derivatives phi', as Numba loops over a layer.

Each hidden layer stores phi(y) (its output) and phi'(y) (the local gradient factor)
in one pass, so the backward pass is an elementwise product and the dying-ReLU and
saturation statistics read phi' without recomputing anything.

In float32, tanh and sigmoid use a rational approximation of tanh (the minimax
13/6 rational used by Eigen, max abs error ~1e-7 on float32) that LLVM vectorises;
``np.tanh`` inside an njit loop is a scalar libm call, about four times slower for
the whole step. float64 uses the exact functions, so gradient checks in float64
compare against the true derivative.
"""

from __future__ import annotations

import numpy as np
from gradtui.engine.jit import kernel

SIGMOID, TANH, RELU, LEAKY_RELU, PRELU, ELU, LINEAR = range(7)
CODES = {
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "prelu": PRELU,
    "elu": ELU,
    "linear": LINEAR,
}
# phi' below this fraction of its maximum counts as saturated: sigmoid' < 0.0125, tanh' < 0.05.
SATURATION_FRACTION = 0.05
SATURATION_LIMIT = {SIGMOID: 0.25 * SATURATION_FRACTION, TANH: 1.0 * SATURATION_FRACTION}



_F = np.float32
_CLAMP = _F(7.99881172180175781)


@kernel(inline="always")
def fast_tanh(x):
    """tanh(x) ~= x P(x^2) / Q(x^2) on [-7.9988, 7.9988], clamped outside (Eigen's float tanh).

    float32 constants keep the whole evaluation in single precision (twice as fast as
    letting float64 constants promote it); the float32 path is its only user.
    """
    x = _CLAMP if x > _CLAMP else x
    x = -_CLAMP if x < -_CLAMP else x
    x2 = x * x
    p = x2 * _F(-2.76076847742355e-16) + _F(2.00018790482477e-13)
    p = x2 * p + _F(-8.60467152213735e-11)
    p = x2 * p + _F(5.12229709037114e-08)
    p = x2 * p + _F(1.48572235717979e-05)
    p = x2 * p + _F(6.37261928875436e-04)
    p = x2 * p + _F(4.89352455891786e-03)
    p = x * p
    q = x2 * _F(1.19825839466702e-06) + _F(1.18534705686654e-04)
    q = x2 * q + _F(2.26843463243900e-03)
    q = x2 * q + _F(4.89352518554385e-03)
    return p / q


# Where the statistics and the backward pass take phi' from (phi_prime's ``source``).
STORED, FROM_TANH, FROM_SIGMOID = range(3)


@kernel(inline="always")
def phi_prime(source, h, d, k):
    """phi' at flat index k: d[k] as stored (STORED), or from the output h = phi(y):
    1 - h^2 for tanh (FROM_TANH), h (1 - h) for the sigmoid (FROM_SIGMOID), the formulas
    activate stores. Both loads are made whichever the source (pass h as d when nothing is
    stored), so a loop over k stays branch-free and vectorises."""
    x = h[k]
    stored = d[k]
    one = h.dtype.type(1.0)
    if source == FROM_TANH:
        return one - x * x
    if source == FROM_SIGMOID:
        return x * (one - x)
    return stored


@kernel
def activate_output(code, Z, bias, H, exact):
    """H = phi(Z + bias) (the bias added to every row) for the sigmoid and tanh, without phi':
    the backward pass and the statistics recompute it from H (phi_prime).
    One pass that writes only H, where add_row and activate read and write Z, then write H
    and D. The same formulas as activate's, so H is the same to the bit."""
    n, m = Z.shape
    if code == SIGMOID and exact:
        for i in range(n):
            for j in range(m):
                H[i, j] = 0.5 + 0.5 * np.tanh(0.5 * (Z[i, j] + bias[j]))
    elif code == SIGMOID:
        for i in range(n):
            for j in range(m):
                H[i, j] = _F(0.5) + _F(0.5) * fast_tanh(_F(0.5) * (Z[i, j] + bias[j]))
    elif exact:
        for i in range(n):
            for j in range(m):
                H[i, j] = np.tanh(Z[i, j] + bias[j])
    else:
        for i in range(n):
            for j in range(m):
                H[i, j] = fast_tanh(Z[i, j] + bias[j])


@kernel
def activate(code, Y, H, D, slope, alpha, elu_alpha, exact):
    """H = phi(Y) and D = phi'(Y), elementwise over a (batch, units) block.

    sigmoid: phi = 1/(1+e^-y) = (1 + tanh(y/2))/2, phi' = phi(1-phi)
    tanh:    phi' = 1 - phi^2
    relu:    phi = max(y, 0), phi' = [y > 0]
    leaky:   phi = y if y > 0 else s*y, phi' = 1 or s
    prelu:   as leaky with a learnable slope alpha_j per unit
    elu:     phi = y if y > 0 else a(e^y - 1), phi' = 1 or phi + a
    linear:  phi = y, phi' = 1
    """
    n, m = Y.shape
    if code == SIGMOID and exact:
        for i in range(n):
            for j in range(m):
                s = 0.5 + 0.5 * np.tanh(0.5 * Y[i, j])
                H[i, j] = s
                D[i, j] = s * (1.0 - s)
    elif code == SIGMOID:
        for i in range(n):
            for j in range(m):
                s = _F(0.5) + _F(0.5) * fast_tanh(_F(0.5) * Y[i, j])
                H[i, j] = s
                D[i, j] = s * (_F(1.0) - s)
    elif code == TANH and exact:
        for i in range(n):
            for j in range(m):
                t = np.tanh(Y[i, j])
                H[i, j] = t
                D[i, j] = 1.0 - t * t
    elif code == TANH:
        for i in range(n):
            for j in range(m):
                t = fast_tanh(Y[i, j])
                H[i, j] = t
                D[i, j] = _F(1.0) - t * t
    elif code == RELU:
        for i in range(n):
            for j in range(m):
                y = Y[i, j]
                pos = y > 0.0
                H[i, j] = y if pos else 0.0
                D[i, j] = 1.0 if pos else 0.0
    elif code == LEAKY_RELU or code == PRELU:
        for i in range(n):
            for j in range(m):
                y = Y[i, j]
                s = alpha[j] if code == PRELU else slope
                pos = y > 0.0
                H[i, j] = y if pos else s * y
                D[i, j] = 1.0 if pos else s
    elif code == ELU:
        for i in range(n):
            for j in range(m):
                y = Y[i, j]
                if y > 0.0:
                    H[i, j] = y
                    D[i, j] = 1.0
                else:
                    e = elu_alpha * np.expm1(y)
                    H[i, j] = e
                    D[i, j] = e + elu_alpha
    else:
        for i in range(n):
            for j in range(m):
                H[i, j] = Y[i, j]
                D[i, j] = 1.0
