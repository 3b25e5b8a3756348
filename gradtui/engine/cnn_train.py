"""Several whole CNN training steps in one kernel call: gather the batch, forward, loss,
backward and statistics (cnn_step), then gradtui.engine.train_loop.finish_step (gradient
norms, finiteness checks, the update; the loop's contract is documented there)."""

from __future__ import annotations

import numpy as np

from gradtui.engine.cnn_kernel import cnn_step
from gradtui.engine.jit import kernel
from gradtui.engine.train_loop import (
    ACT_MEAN, ACT_STD, DEAD, DELTA, OK, SATURATION, OptimiserState, StepOutputs, UpdateSettings, finish_step,
    gather_batch,
)


@kernel
def cnn_train_steps(state_fields, grad, segments, table, x_all, y_all, batches,
                    channels, act, slope, elu_alpha, batchnorm, exact, sat_limit,
                    Z, ZH, D, H, inv_std, running_mean, running_var,
                    cols, part, sub, skip, pooled, logits, dlogits, dH, DZ, DY, scratch, xb, yb,
                    up_fields, t0, statistics, out_fields):
    """Up to ``batches.shape[0]`` steps; returns (steps taken, current is spare, status).
    ``state_fields``, ``up_fields``, ``out_fields``: the fields of an OptimiserState, UpdateSettings
    and StepOutputs as plain tuples (see train_loop.plain)."""
    state, up, out = OptimiserState(*state_fields), UpdateSettings(*up_fields), StepOutputs(*out_fields)
    saved_mean = running_mean.copy()
    saved_var = running_var.copy()
    batch = xb.shape[0]
    images = xb.reshape((batch * (xb.shape[1] // channels), channels))
    no_targets = np.zeros((1, 1), xb.dtype)
    YES = np.bool_(True)  # not the literal True: that would compile the callees a second time
    for k in range(batches.shape[0]):
        gather_batch(x_all, y_all, no_targets, batches[k], YES, xb, yb, no_targets)
        S = out.stats[k]
        loss = cnn_step(state.theta, grad, table, images, yb, logits, YES, act, slope, elu_alpha,
                        batchnorm, exact, sat_limit, Z, ZH, D, H, inv_std, running_mean, running_var,
                        cols, part, sub, skip, pooled, logits, dlogits, dH, DZ, DY, scratch, YES, statistics,
                        S[ACT_MEAN], S[ACT_STD], S[DEAD], S[SATURATION], S[DELTA])
        status, state = finish_step(loss, state, grad, segments, k, t0 + k, up, batchnorm,
                                    running_mean, running_var, saved_mean, saved_var, out)
        if status != OK:
            return k + 1, k % 2 == 1, status
    return batches.shape[0], batches.shape[0] % 2 == 1, OK
