"""Several whole CNN training steps in one kernel call: gather the batch, forward, loss,
backward and statistics (cnn_step), then gradtui.engine.train_loop.finish_step (gradient
norms, finiteness checks, the update; the loop's contract is documented there)."""

from __future__ import annotations

import numpy as np

from gradtui.engine.cnn_kernel import cnn_step
from gradtui.engine.jit import kernel
from gradtui.engine.train_loop import ACT_MEAN, ACT_STD, DEAD, DELTA, OK, SATURATION, finish_step, gather_batch


@kernel
def cnn_train_steps(theta, spare, s1, s2, s1_next, s2_next, grad, segments, table, x_all, y_all, batches,
                    channels, act, slope, elu_alpha, batchnorm, exact, sat_limit,
                    Z, ZH, D, H, inv_std, running_mean, running_var,
                    cols, part, sub, skip, pooled, logits, dlogits, dH, DZ, DY, scratch, xb, yb,
                    optimizer, lr, momentum, weight_decay, clip, clip_threshold, t0, statistics,
                    stats, losses, totals, clipped):
    """Up to ``batches.shape[0]`` steps; returns (steps taken, current is spare, status)."""
    saved_mean = running_mean.copy()
    saved_var = running_var.copy()
    buffers = (theta, spare, s1, s2, s1_next, s2_next)
    batch = xb.shape[0]
    images = xb.reshape((batch * (xb.shape[1] // channels), channels))
    no_targets = np.zeros((1, 1), xb.dtype)
    for k in range(batches.shape[0]):
        gather_batch(x_all, y_all, no_targets, batches[k], True, xb, yb, no_targets)
        S = stats[k]
        loss = cnn_step(buffers[0], grad, table, images, yb, logits, True, act, slope, elu_alpha,
                        batchnorm, exact, sat_limit, Z, ZH, D, H, inv_std, running_mean, running_var,
                        cols, part, sub, skip, pooled, logits, dlogits, dH, DZ, DY, scratch, True, statistics,
                        S[ACT_MEAN], S[ACT_STD], S[DEAD], S[SATURATION], S[DELTA])
        status, buffers = finish_step(loss, buffers, grad, segments, S, t0 + k, optimizer, lr, momentum, weight_decay,
                                      clip, clip_threshold, batchnorm, running_mean, running_var, saved_mean, saved_var,
                                      losses, totals, clipped, k)
        if status != OK:
            return k + 1, k % 2 == 1, status
    return batches.shape[0], batches.shape[0] % 2 == 1, OK
