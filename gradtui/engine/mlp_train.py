"""Several whole MLP training steps in one kernel call: gather the batch, forward, loss,
backward and statistics (mlp_step), then gradtui.engine.train_loop.finish_step (gradient
norms, finiteness checks, the update; the loop's contract is documented there).
"""

from __future__ import annotations

from gradtui.engine.jit import kernel
from gradtui.engine.mlp_kernel import mlp_step
from gradtui.engine.train_loop import (  # noqa: F401  (STAT_ROWS: for importers of this module)
    ACT_MEAN, ACT_STD, DEAD, DELTA, OK, SATURATION, STAT_ROWS, finish_step, gather_batch,
)


@kernel
def mlp_train_steps(theta, spare, s1, s2, s1_next, s2_next, grad, segments, table,
                    x_all, yc_all, yv_all, batches, classification, act, slope, elu_alpha,
                    batchnorm, exact, sat_limit, Z, ZH, D, H, inv_std, running_mean, running_var,
                    logits, dlogits, dH, dH_next, DZ, xb, ycb, yvb,
                    optimizer, lr, momentum, weight_decay, clip, clip_threshold, t0, statistics,
                    stats, losses, totals, clipped):
    """Up to ``batches.shape[0]`` steps; returns (steps taken, current is spare, status)."""
    saved_mean = running_mean.copy()
    saved_var = running_var.copy()
    buffers = (theta, spare, s1, s2, s1_next, s2_next)
    for k in range(batches.shape[0]):
        gather_batch(x_all, yc_all, yv_all, batches[k], classification, xb, ycb, yvb)
        S = stats[k]
        loss = mlp_step(buffers[0], grad, table, xb, ycb, yvb, classification, act, slope, elu_alpha,
                        batchnorm, exact, sat_limit, Z, ZH, D, H, inv_std, running_mean, running_var,
                        logits, dlogits, dH, dH_next, DZ, True, statistics,
                        S[ACT_MEAN], S[ACT_STD], S[DEAD], S[SATURATION], S[DELTA])
        status, buffers = finish_step(loss, buffers, grad, segments, S, t0 + k, optimizer, lr, momentum, weight_decay,
                                      clip, clip_threshold, batchnorm, running_mean, running_var, saved_mean, saved_var,
                                      losses, totals, clipped, k)
        if status != OK:
            return k + 1, k % 2 == 1, status
    return batches.shape[0], batches.shape[0] % 2 == 1, OK
