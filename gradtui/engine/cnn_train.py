"""Several whole CNN training steps in one kernel call: gather the batch, forward, loss,
backward and statistics (cnn_step), gradient norms, finiteness checks and the update.
The contract (ping-pong buffers, status codes, a non-finite step changes nothing) is
the MLP's, documented in gradtui.engine.mlp_train."""

from __future__ import annotations

import numpy as np

from gradtui.engine.cnn_kernel import cnn_step
from gradtui.engine.jit import kernel
from gradtui.engine.mlp_train import (
    ACT_MEAN, ACT_STD, DEAD, DELTA, GRAD, LAYER_FINITE, NONFINITE_AFTER_UPDATE, NONFINITE_BEFORE_UPDATE,
    OK, SATURATION, UPDATE, WEIGHT,
)
from gradtui.engine.update import apply_update, gradient_norms


@kernel
def _gather_images(x_all, y_all, rows, xb, yb):
    for b in range(rows.shape[0]):
        r = rows[b]
        for j in range(xb.shape[1]):
            xb[b, j] = x_all[r, j]
        yb[b] = y_all[r]


@kernel
def cnn_train_steps(theta, spare, s1, s2, s1_next, s2_next, grad, segments, table, x_all, y_all, batches,
                    channels, act, slope, elu_alpha, batchnorm, exact, sat_limit,
                    Z, ZH, D, H, inv_std, running_mean, running_var,
                    cols, cache, sub, skip, pooled, logits, dlogits, dH, DZ, DY, scratch, xb, yb,
                    optimizer, lr, momentum, weight_decay, clip, clip_threshold, t0, statistics,
                    stats, losses, totals, clipped):
    """Up to ``batches.shape[0]`` steps; returns (steps taken, current is spare, status)."""
    n_layers = stats.shape[2]
    mean_before = running_mean.copy()
    var_before = running_var.copy()
    flipped = False
    batch = xb.shape[0]
    images = xb.reshape((batch * (xb.shape[1] // channels), channels))
    for k in range(batches.shape[0]):
        _gather_images(x_all, y_all, batches[k], xb, yb)
        S = stats[k]
        if batchnorm:
            mean_before[:] = running_mean
            var_before[:] = running_var
        loss = cnn_step(theta, grad, table, images, yb, logits, True, act, slope, elu_alpha,
                        batchnorm, exact, sat_limit, Z, ZH, D, H, inv_std, running_mean, running_var,
                        cols, cache, sub, skip, pooled, logits, dlogits, dH, DZ, DY, scratch, True, statistics,
                        S[ACT_MEAN], S[ACT_STD], S[DEAD], S[SATURATION], S[DELTA])
        total = gradient_norms(grad, segments, n_layers, S[GRAD])
        losses[k] = loss
        totals[k] = total
        if not (np.isfinite(loss) and np.isfinite(total) and np.isfinite(S[:LAYER_FINITE].sum())):
            running_mean[:] = mean_before
            running_var[:] = var_before
            return k + 1, flipped, NONFINITE_BEFORE_UPDATE
        clipped[k] = apply_update(theta, grad, s1, s2, spare, s1_next, s2_next, segments,
                                  optimizer, lr, momentum, weight_decay, clip, clip_threshold, total, t0 + k,
                                  S[WEIGHT], S[UPDATE], S[LAYER_FINITE])
        if not np.isfinite(S[LAYER_FINITE].sum()):
            running_mean[:] = mean_before
            running_var[:] = var_before
            return k + 1, flipped, NONFINITE_AFTER_UPDATE
        theta, spare = spare, theta
        s1, s1_next = s1_next, s1
        s2, s2_next = s2_next, s2
        flipped = not flipped
    return batches.shape[0], flipped, OK
