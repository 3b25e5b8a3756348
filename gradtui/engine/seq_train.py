"""Several whole recurrent training steps in one kernel call: gather the batch time-major,
forward, loss, BPTT and statistics (seq_kernel.seq_step), then
gradtui.engine.train_loop.finish_step (gradient norms, finiteness checks, the update; the
loop's contract is documented there).
"""

from __future__ import annotations

import numpy as np

from gradtui.engine.jit import kernel
from gradtui.engine.seq_kernel import SeqSettings, SeqStats, SeqWorkspace, seq_step
from gradtui.engine.train_loop import (
    ACT_MEAN, ACT_STD, DEAD, DELTA, OK, SATURATION, OptimiserState, StepOutputs, UpdateSettings, finish_step,
)


@kernel
def gather_sequences(x_all, yc_all, yv_all, rows, classification, XT, YC, YV):
    """The batch's examples (row indices ``rows``) into the time-major buffers: XT[t, b] = x[row, t],
    YC[r, b] = class label y[row, r] or YV[r, b] = target y[row, r]."""
    for b in range(rows.shape[0]):
        n = rows[b]
        for t in range(XT.shape[0]):
            for k in range(XT.shape[2]):
                XT[t, b, k] = x_all[n, t, k]
        if classification:
            for r in range(YC.shape[0]):
                YC[r, b] = yc_all[n, r]
        else:
            for r in range(YV.shape[0]):
                for k in range(YV.shape[2]):
                    YV[r, b, k] = yv_all[n, r, k]


@kernel
def seq_train_steps(state_fields, grad, segments, table, x_all, yc_all, yv_all, batches, ws_fields, hp_fields,
                    up_fields, t0, statistics, out_fields, time_norms, forget_means):
    """Up to ``batches.shape[0]`` steps; returns (steps taken, current is spare, status).

    The structures arrive as plain tuples of their fields (see train_loop.plain):
    ``state_fields`` an OptimiserState, ``ws_fields`` a SeqWorkspace (its XT, YC, YV receive
    each batch), ``hp_fields`` SeqSettings, ``up_fields`` UpdateSettings, ``out_fields``
    StepOutputs. ``yc_all`` (n, R) class labels, ``yv_all`` (n, R, K) targets (the unused one
    a placeholder). Step k's time profile goes to ``time_norms[k]`` and, for an LSTM, its
    forget-gate means to ``forget_means[k]``."""
    state, ws, hp = OptimiserState(*state_fields), SeqWorkspace(*ws_fields), SeqSettings(*hp_fields)
    up, out = UpdateSettings(*up_fields), StepOutputs(*out_fields)
    no_shift = np.zeros((1, 1, 1), ws.XT.dtype)
    no_buffers = np.zeros(1)
    NO = np.bool_(False)  # not the literal False: that would compile seq_step and finish_step a second time
    for k in range(batches.shape[0]):
        gather_sequences(x_all, yc_all, yv_all, batches[k], hp.classification, ws.XT, ws.YC, ws.YV)
        S = out.stats[k]
        st = SeqStats(statistics, S[ACT_MEAN], S[ACT_STD], S[DEAD], S[SATURATION], S[DELTA], forget_means[k],
                      time_norms[k])
        loss = seq_step(state.theta, grad, table, ws, hp, no_shift, NO, st)
        status, state = finish_step(loss, state, grad, segments, k, t0 + k, up, NO, no_buffers, no_buffers,
                                    no_buffers, no_buffers, out)
        if status != OK:
            return k + 1, k % 2 == 1, status
    return batches.shape[0], batches.shape[0] % 2 == 1, OK
