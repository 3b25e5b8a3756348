"""Several whole MLP training steps in one kernel call.

One call runs K steps: gather the batch, forward, loss, backward and statistics
(mlp_step), the gradient norms, the finiteness checks and the optimiser update.
The GIL is released for all of it, so a busy interface thread costs the training
thread one GIL hand-over per call rather than several per step, and the Python
overhead of a step is paid once per call.

Buffers ping-pong: the update writes the new parameters and optimiser state into
the spare buffers, which become current when every new value is finite. The call
returns how many steps it took, whether the current buffers are the spare ones
(an odd number of applied updates) and a status: 0 all applied, 1 the last step
went non-finite before its update (loss, activations or gradients), 2 its update
would have made parameters non-finite. A non-finite step is the last one taken
and changes nothing, batch norm's running statistics included.
"""

from __future__ import annotations

import numpy as np

from gradtui.engine.jit import kernel
from gradtui.engine.mlp_kernel import mlp_step
from gradtui.engine.record import FORWARD_STATS, UPDATE_STATS
from gradtui.engine.update import apply_update, gradient_norms

OK, NONFINITE_BEFORE_UPDATE, NONFINITE_AFTER_UPDATE = 0, 1, 2
# Rows of the per-step statistics table (Experiment builds StepRecords from them): the kernel
# fills the first five, the gradient norms and the update the rest.
STAT_ROWS = FORWARD_STATS + UPDATE_STATS + ("layer_finite",)
ACT_MEAN, ACT_STD, DEAD, SATURATION, DELTA, GRAD, WEIGHT, UPDATE, LAYER_FINITE = range(len(STAT_ROWS))


@kernel
def _gather(x_all, yc_all, yv_all, rows, classification, xb, ycb, yvb):
    """Copy the batch's examples (row indices ``rows``) into the batch buffers, element by
    element: a row slice per example would cost two reference-count updates each."""
    for b in range(rows.shape[0]):
        r = rows[b]
        for j in range(xb.shape[1]):
            xb[b, j] = x_all[r, j]
        if classification:
            ycb[b] = yc_all[r]
        else:
            for j in range(yvb.shape[1]):
                yvb[b, j] = yv_all[r, j]


@kernel
def mlp_train_steps(theta, spare, s1, s2, s1_next, s2_next, grad, segments, table,
                    x_all, yc_all, yv_all, batches, classification, act, slope, elu_alpha,
                    batchnorm, exact, sat_limit, Z, ZH, D, H, inv_std, running_mean, running_var,
                    logits, dlogits, dH, dH_next, DZ, xb, ycb, yvb,
                    optimizer, lr, momentum, weight_decay, clip, clip_threshold, t0, statistics,
                    stats, losses, totals, clipped):
    """Up to ``batches.shape[0]`` steps; returns (steps taken, current is spare, status)."""
    n_layers = stats.shape[2]
    mean_before = running_mean.copy()
    var_before = running_var.copy()
    flipped = False
    for k in range(batches.shape[0]):
        _gather(x_all, yc_all, yv_all, batches[k], classification, xb, ycb, yvb)
        S = stats[k]
        if batchnorm:
            mean_before[:] = running_mean
            var_before[:] = running_var
        loss = mlp_step(theta, grad, table, xb, ycb, yvb, classification, act, slope, elu_alpha,
                        batchnorm, exact, sat_limit, Z, ZH, D, H, inv_std, running_mean, running_var,
                        logits, dlogits, dH, dH_next, DZ, True, statistics,
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
