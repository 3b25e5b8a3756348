"""Batch normalisation over a (batch, units) block, forward and backward, for the MLP and CNN kernels.

Training mode normalises with the batch's statistics and updates the running ones
(momentum BN_MOMENTUM, unbiased variance); evaluation uses the running ones.
"""

from __future__ import annotations

import numpy as np

from gradtui.engine.jit import kernel

BN_EPS = 1e-5
BN_MOMENTUM = 0.1


@kernel
def batchnorm_forward(Z, ZH, inv_std, gamma, beta, running_mean, running_var, train, use_running):
    """Normalise Z per unit in place: ZH = (Z - mu)/sqrt(var + eps), Z = gamma*ZH + beta.

    Row-major passes with per-unit float64 accumulators: a unit's column is strided in
    memory, so column-at-a-time loops do not vectorise."""
    n, m = Z.shape
    mu = np.empty(m)
    r = np.empty(m)
    if use_running:
        mu[:] = running_mean
        r[:] = 1.0 / np.sqrt(running_var + BN_EPS)
    else:
        mu[:] = 0.0
        for i in range(n):
            for j in range(m):
                mu[j] += Z[i, j]
        mu /= n
        ss = np.zeros(m)
        for i in range(n):
            for j in range(m):
                d = Z[i, j] - mu[j]
                ss[j] += d * d
        for j in range(m):
            var = ss[j] / n
            if train:
                unbiased = ss[j] / (n - 1) if n > 1 else var
                running_mean[j] = (1.0 - BN_MOMENTUM) * running_mean[j] + BN_MOMENTUM * mu[j]
                running_var[j] = (1.0 - BN_MOMENTUM) * running_var[j] + BN_MOMENTUM * unbiased
            r[j] = 1.0 / np.sqrt(var + BN_EPS)
    inv_std[:] = r
    for i in range(n):
        for j in range(m):
            zh = (Z[i, j] - mu[j]) * r[j]
            ZH[i, j] = zh
            Z[i, j] = gamma[j] * zh + beta[j]


@kernel
def batchnorm_backward(DY, ZH, inv_std, gamma, dgamma, dbeta, DZ):
    """dz = (inv_std/B) * (B*g - sum(g) - zh*sum(g*zh)) with g = gamma*dL/dy; also dgamma, dbeta.
    Row-major passes with per-unit float64 sums, as in the forward pass."""
    n, m = DY.shape
    dgm = np.zeros(m)
    dbt = np.zeros(m)
    for i in range(n):
        for j in range(m):
            dy = DY[i, j]
            dgm[j] += dy * ZH[i, j]
            dbt[j] += dy
    dgamma[:] = dgm
    dbeta[:] = dbt
    scale = np.empty(m)
    sg = np.empty(m)
    sgz = np.empty(m)
    ng = np.empty(m)
    for j in range(m):
        scale[j] = inv_std[j] / n
        sg[j] = gamma[j] * dbt[j]
        sgz[j] = gamma[j] * dgm[j]
        ng[j] = n * gamma[j]
    for i in range(n):
        for j in range(m):
            DZ[i, j] = scale[j] * (ng[j] * DY[i, j] - sg[j] - ZH[i, j] * sgz[j])
