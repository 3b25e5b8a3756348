"""Weight initialisation schemes.

For a matrix W of shape (fan_in, fan_out), before ``gain`` multiplies the std:
    standard       U[-1/sqrt(fan_in), 1/sqrt(fan_in)]        Var = 1/(3 fan_in)   (Glorot & Bengio 2010)
    normal         N(0, std^2)
    xavier         U[-r, r], r = sqrt(6/(fan_in+fan_out))    Var = 2/(fan_in+fan_out)
    xavier_normal  N(0, 2/(fan_in+fan_out))
    he             N(0, 2/fan_in)                             (He et al. 2015)
    he_uniform     U[-r, r], r = sqrt(6/fan_in)               Var = 2/fan_in
    lecun          N(0, 1/fan_in)
    orthogonal     a random (semi-)orthogonal matrix          (Saxe et al. 2013)
    identity       I (square matrices; recurrent weights, Le et al. 2015)
"""

from __future__ import annotations

import numpy as np


def orthogonal(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """A matrix with orthonormal rows or columns, drawn uniformly (QR of a Gaussian, sign-fixed)."""
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    return q if rows >= cols else q.T


def init_weight(scheme: str, rng: np.random.Generator, fan_in: int, fan_out: int,
                gain: float = 1.0, std: float = 0.01) -> np.ndarray:
    """A (fan_in, fan_out) float64 matrix drawn from ``scheme``, its std multiplied by ``gain``."""
    shape = (fan_in, fan_out)
    if scheme == "standard":
        w = rng.uniform(-1.0, 1.0, shape) / np.sqrt(fan_in)
    elif scheme == "normal":
        w = rng.normal(0.0, std, shape)
    elif scheme == "xavier":
        w = rng.uniform(-1.0, 1.0, shape) * np.sqrt(6.0 / (fan_in + fan_out))
    elif scheme == "xavier_normal":
        w = rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), shape)
    elif scheme == "he":
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    elif scheme == "he_uniform":
        w = rng.uniform(-1.0, 1.0, shape) * np.sqrt(6.0 / fan_in)
    elif scheme == "lecun":
        w = rng.normal(0.0, np.sqrt(1.0 / fan_in), shape)
    elif scheme == "orthogonal":
        w = orthogonal(rng, fan_in, fan_out)
    elif scheme == "identity":
        w = np.eye(fan_in, fan_out)
    else:
        raise ValueError(f"unknown init scheme {scheme!r}")
    return w * gain
