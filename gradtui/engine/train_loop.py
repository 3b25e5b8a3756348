"""What every fused training loop does after a step's forward and backward pass: the
gradient norms, the finiteness checks and the optimiser update (gradtui.engine.mlp_train
and gradtui.engine.cnn_train run it, each after its own kind's step).

One call of a training loop runs K steps and releases the GIL for all of it, so a busy
interface thread costs the training thread one GIL hand-over per call rather than several
per step, and the Python overhead of a step is paid once per call.

Buffers ping-pong: the update writes the new parameters and optimiser state into the
spare buffers, which become current when every new value is finite. A loop returns how
many steps it took, whether the current buffers are the spare ones (an odd number of
applied updates) and a status: 0 all applied, 1 the last step went non-finite before its
update (loss, activations or gradients), 2 its update would have made parameters
non-finite. A non-finite step is the last one taken and changes nothing, batch norm's
running statistics included.

A loop's optimiser arguments are three named structures (Numba compiles namedtuples of
arrays and scalars like separate arguments): the parameters and optimiser state with their
spares (OptimiserState), the hyper-parameters (UpdateSettings) and the per-step outputs
(StepOutputs). A loop, called from Python, takes each as a plain tuple of its fields
(``plain``) and names it inside: Numba's dispatcher types a plain tuple of arrays and
scalars from a cached fingerprint, a namedtuple through Python, about a microsecond per
argument per call, which a training step of a small net would feel.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from gradtui.engine.jit import kernel
from gradtui.engine.record import FORWARD_STATS, UPDATE_STATS
from gradtui.engine.update import CLIP_CODES, OPTIMIZER_CODES, apply_update, gradient_norms

OK, NONFINITE_BEFORE_UPDATE, NONFINITE_AFTER_UPDATE = 0, 1, 2
# Rows of the per-step statistics table (Experiment builds StepRecords from them): the kernel
# fills the first five, the gradient norms and the update the rest.
STAT_ROWS = FORWARD_STATS + UPDATE_STATS + ("layer_finite",)
ACT_MEAN, ACT_STD, DEAD, SATURATION, DELTA, GRAD, WEIGHT, UPDATE, LAYER_FINITE = range(len(STAT_ROWS))

OptimiserState = namedtuple("OptimiserState", [
    "theta", "spare",  # the current parameters and the buffer the update writes the new ones into
    "s1", "s2",  # the optimiser's state (momentum's velocity, Adam's moments, RMSProp's mean square)
    "s1_next", "s2_next",  # and its spares
])
UpdateSettings = namedtuple("UpdateSettings", [
    "optimizer", "lr", "momentum", "weight_decay", "clip", "clip_threshold",  # codes from gradtui.engine.update
])
StepOutputs = namedtuple("StepOutputs", [
    "stats",  # (steps, STAT_ROWS, layers) float64
    "losses", "totals", "clipped",  # per step: the loss, the global gradient norm, whether clipping changed g
])


def plain(structure) -> tuple:
    """A named structure as the plain tuple of its fields a training loop takes from Python."""
    return tuple(structure)


def update_settings(tr) -> UpdateSettings:
    """The kernels' view of a TrainConfig ``tr``."""
    return UpdateSettings(OPTIMIZER_CODES[tr.optimizer], tr.lr, tr.momentum, tr.weight_decay,
                          CLIP_CODES[tr.clip], tr.clip_threshold)


_last_update_fields = (None, ())


def update_fields(tr) -> tuple:
    """``plain(update_settings(tr))``, kept for the last TrainConfig object asked about: a
    training loop called once per step with the same settings then skips rebuilding them."""
    global _last_update_fields
    last = _last_update_fields
    if last[0] is not tr:
        last = _last_update_fields = (tr, plain(update_settings(tr)))
    return last[1]


@kernel
def gather_batch(x_all, yc_all, yv_all, rows, classification, xb, ycb, yvb):
    """Copy the batch's examples (row indices ``rows``) into the batch buffers (class labels
    ``ycb`` or target rows ``yvb``), element by element: a row slice per example would cost
    two reference-count updates each."""
    for b in range(rows.shape[0]):
        r = rows[b]
        for j in range(xb.shape[1]):
            xb[b, j] = x_all[r, j]
        if classification:
            ycb[b] = yc_all[r]
        else:
            for j in range(yvb.shape[1]):
                yvb[b, j] = yv_all[r, j]


@kernel(inline="always")
def finish_step(loss, state, grad, segments, k, step, up, batchnorm, running_mean, running_var, saved_mean,
                saved_var, out, presummed=None):
    """Step k's gradient norms (into ``out.stats[k]``), the checks and the update (``state``: an
    OptimiserState; ``up``: UpdateSettings; ``step``: the optimiser's step count). Returns (status,
    the state for the next step): the update's new parameters and optimiser state when it applied,
    else the same. A non-finite step puts batch norm's running statistics back to ``saved_mean``,
    ``saved_var``, which hold them as they were before the step (they start as copies; each
    applied step saves its own). ``presummed``: sums (and updates) the step's kernel took
    already (gradtui.engine.update.PRE_GRAD), or None."""
    S = out.stats[k]
    total = gradient_norms(grad, segments, S.shape[1], S[GRAD], presummed)
    out.losses[k] = loss
    out.totals[k] = total
    status = OK
    if not (np.isfinite(loss) and np.isfinite(total) and np.isfinite(S[:LAYER_FINITE].sum())):
        status = NONFINITE_BEFORE_UPDATE
    else:
        out.clipped[k] = apply_update(state.theta, grad, state.s1, state.s2, state.spare, state.s1_next,
                                      state.s2_next, segments, up.optimizer, up.lr, up.momentum, up.weight_decay,
                                      up.clip, up.clip_threshold, total, step, S[WEIGHT], S[UPDATE],
                                      S[LAYER_FINITE], presummed)
        if not np.isfinite(S[LAYER_FINITE].sum()):
            status = NONFINITE_AFTER_UPDATE
    if status != OK:
        running_mean[:] = saved_mean
        running_var[:] = saved_var
        return status, state
    if batchnorm:
        saved_mean[:] = running_mean
        saved_var[:] = running_var
    return status, OptimiserState(state.spare, state.theta, state.s1_next, state.s2_next, state.s1, state.s2)
