"""Several whole MLP training steps in one kernel call: gather the batch, forward, loss,
backward and statistics (gradtui.engine.mlp_fused.fused_mlp_step), then
gradtui.engine.train_loop.finish_step (gradient
norms, finiteness checks, the update; the loop's contract is documented there).
"""

from __future__ import annotations

import numpy as np

from gradtui.engine.jit import kernel
from gradtui.engine.mlp_fused import WeightStep, fused_mlp_step, weight_segments
from gradtui.engine.mlp_kernel import MLPSettings, MLPStats
from gradtui.engine.mlp_workspace import WorkspaceDims, carve
from gradtui.engine.subnormals import begin_flush, end_flush
from gradtui.engine.train_loop import (  # noqa: F401  (STAT_ROWS: for importers of this module)
    ACT_MEAN, ACT_STD, DEAD, DELTA, OK, SATURATION, STAT_ROWS, OptimiserState, StepOutputs, UpdateSettings,
    finish_step, gather_batch,
)
from gradtui.engine.update import CLIP_NONE, PRE_HAS_GRAD, PRE_HAS_UPDATE, SGD


@kernel
def mlp_train_steps(state_fields, grad, segments, table, x_all, yc_all, yv_all, batches, ws_buffer, ws_labels,
                    ws_dims, hp_fields, running_mean, running_var, up_fields, t0, statistics, out_fields, flush):
    """Up to ``batches.shape[0]`` steps; returns (steps taken, current is spare, status). With
    ``flush``, subnormal numbers count as zero meanwhile (gradtui.engine.subnormals; the caller
    then needs no ``flushed`` block around the call)."""
    saved = begin_flush(flush)
    result = _train_steps(state_fields, grad, segments, table, x_all, yc_all, yv_all, batches, ws_buffer,
                          ws_labels, ws_dims, hp_fields, running_mean, running_var, up_fields, t0, statistics,
                          out_fields)
    end_flush(flush, saved)
    return result


@kernel
def _train_steps(state_fields, grad, segments, table, x_all, yc_all, yv_all, batches, ws_buffer, ws_labels,
                 ws_dims, hp_fields, running_mean, running_var, up_fields, t0, statistics, out_fields):
    """mlp_train_steps' loop.

    The structures arrive as plain tuples of their fields, in order, and are named here
    (see train_loop.plain): ``state_fields`` an OptimiserState; ``hp_fields`` MLPSettings; ``up_fields``
    UpdateSettings; ``out_fields`` StepOutputs; ``ws_dims`` WorkspaceDims. The workspace arrives as
    its buffer and labels (gradtui.engine.mlp_workspace: two arguments where its arrays were
    thirteen); its xb, ycb, yvb receive each batch. ``t0``: the first step's optimiser step count;
    ``statistics``: whether to compute the activation statistics."""
    state, hp = OptimiserState(*state_fields), MLPSettings(*hp_fields)
    ws = carve(ws_buffer, ws_labels, WorkspaceDims(*ws_dims))
    up, out = UpdateSettings(*up_fields), StepOutputs(*out_fields)
    # batch norm's running statistics as they were before each step (without batch norm they
    # never change: no copies)
    saved_mean = running_mean.copy() if hp.batchnorm else running_mean
    saved_var = running_var.copy() if hp.batchnorm else running_var
    # sums (and plain SGD's update) the fused backward pass takes with each weight gradient
    presummed = np.zeros((segments.shape[0], PRE_HAS_UPDATE + 1))
    segment = weight_segments(table, segments)
    sgd = up.optimizer == SGD and up.clip == CLIP_NONE
    YES = np.bool_(True)  # not the literal True: that would compile mlp_step a second time
    for k in range(batches.shape[0]):
        gather_batch(x_all, yc_all, yv_all, batches[k], hp.classification, ws.xb, ws.ycb, ws.yvb)
        S = out.stats[k]
        st = MLPStats(statistics, S[ACT_MEAN], S[ACT_STD], S[DEAD], S[SATURATION], S[DELTA])
        presummed[:, PRE_HAS_GRAD] = 0.0
        presummed[:, PRE_HAS_UPDATE] = 0.0
        wstep = WeightStep(sgd, up.lr, up.weight_decay, state.spare, presummed, segment)
        loss = fused_mlp_step(state.theta, grad, table, ws.xb, ws.ycb, ws.yvb, ws, hp, running_mean, running_var, YES,
                              st, wstep)
        status, state = finish_step(loss, state, grad, segments, k, t0 + k, up, hp.batchnorm,
                                    running_mean, running_var, saved_mean, saved_var, out, presummed)
        if status != OK:
            return k + 1, k % 2 == 1, status
    return batches.shape[0], batches.shape[0] % 2 == 1, OK
