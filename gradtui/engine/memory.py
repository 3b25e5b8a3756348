"""How much memory a config needs, and how much the machine has: refuse before anything starts.

The estimate mirrors the engine's allocations (it imports neither Numba nor the kernels,
so ``gradtui check`` can use it):

* parameters: P numbers (weights, biases, batch norm's gamma and beta, prelu's alpha);
* optimiser: the update writes into a spare copy of the parameters (so a non-finite step
  leaves them untouched), plus the gradient and four moment buffers (two live, two being
  written): 6 P;
* checkpoint: the session's last healthy parameters and two moment buffers: 3 P;
* workspace: per batch size the kernels keep every layer's derivatives and outputs
  (MLP: 2 arrays of depth x batch x width, 2 more with prelu and batch norm; recurrent nets: the states and
  gates of every layer at every time step), once for training batches and once for the
  evaluation chunk;
* data: the generated examples in float64 plus the engine's copy of the training split;
* history: the session's bounded history, ``HISTORY_POINTS`` points of six statistics
  per layer held as Python floats (about 32 bytes each).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

HISTORY_POINTS = 2000
HISTORY_BYTES_PER_VALUE = 32
EVAL_CHUNK_MLP = 1024  # mirrors gradtui.engine.mlp.EVAL_CHUNK
EVAL_ROWS_RECURRENT = 16384  # mirrors gradtui.engine.recurrent.EVAL_ROWS
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a config needs, by part."""

    parameters: int
    optimiser: int
    checkpoint: int
    workspace: int
    data: int
    history: int

    @property
    def engine(self) -> int:
        """What an Experiment alone allocates (no session: no checkpoint, no history)."""
        return self.parameters + self.optimiser + self.workspace + self.data

    @property
    def total(self) -> int:
        return self.engine + self.checkpoint + self.history

    def describe(self) -> str:
        parts = ("parameters", "optimiser", "checkpoint", "workspace", "data", "history")
        return ", ".join(f"{name} {format_bytes(getattr(self, name))}" for name in parts)


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def task_shape(cfg) -> tuple[int, int, int, int]:
    """(inputs per step, outputs, time steps T_total, read-out steps) of the config's task."""
    from gradtui.tasks.sequences import COPY_CLASSES, COPY_EXTRA, COPY_SYMBOLS

    d = cfg.data
    if d.task == "adding":
        return 2, 1, d.seq_len, 1
    if d.task == "copy":
        return COPY_CLASSES, COPY_CLASSES, d.seq_len + COPY_EXTRA, COPY_SYMBOLS
    if d.task == "sine":
        return 1, 1, d.seq_len, d.seq_len
    if d.task == "teacher":
        return d.features, d.outputs, 1, 1
    return 2, (d.classes if d.task == "spirals" else 2), 1, 1


def estimate_memory(cfg) -> MemoryEstimate:
    """The bytes a session training ``cfg`` allocates, by part (see the module docstring)."""
    m, d = cfg.model, cfg.data
    item = 8 if cfg.train.dtype == "float64" else 4
    n_in, n_out, steps, readout = task_shape(cfg)
    L, H = m.depth, m.width
    n_test = int(round(d.samples * d.test_fraction))
    n_train = d.samples - n_test
    batches = (cfg.train.batch_size,)
    if m.kind == "transformer":  # gradtui.engine.transformer's layout and workspace, per token
        T, V, hidden = d.seq_len, 10 + max(26, d.seq_len) + 1, m.mlp_ratio * H
        params = (V + m.max_len) * H + L * (4 * H * H + 2 * H * hidden + hidden + 9 * H) + 2 * H + H * 10 + 10
        per_example = T * (L * (11 * H + m.heads * T + 2 * hidden) + 13 * H + hidden + 20)
        n_in, n_out, steps = 1, 1, T
        batches += (min(n_test, 128),)
    elif cfg.is_recurrent:
        G = GATES[m.kind]
        params = n_in * G * H + (L - 1) * H * G * H + L * (H * G * H + G * H) + H * n_out + n_out
        params += L * H if m.kind == "gru" else 0
        gru = m.kind == "gru"  # the GRU keeps h W_hn + b_hn per layer and its dL/da arrays over all steps
        per_example = (L * (steps + 1) * H * (1 + (m.kind == "lstm")) + L * steps * G * H + L * steps * H * gru
                       + steps * G * H * (1 + 2 * gru) + steps * (2 * H + n_in) + 2 * readout * n_out)
        batches += (min(n_test, max(1, EVAL_ROWS_RECURRENT // steps)),)
    else:
        params = n_in * H + (L - 1) * H * H + H * n_out + L * H + n_out
        params += 2 * L * H if m.batchnorm else 0
        params += L * H if m.activation == "prelu" else 0
        layers_kept = 2 + (L - 1) * (m.activation == "prelu") + (L - 1) * m.batchnorm  # D, H; Z, ZH when needed
        per_example = (2 * L + layers_kept) * H + 3 * H + 2 * n_out + n_in
        batches += (min(n_test, EVAL_CHUNK_MLP),)
    workspace = sum(b * per_example for b in batches) * item
    data = d.samples * steps * (n_in + n_out) * 8 + n_train * steps * (n_in + n_out) * item
    layers = L + 1
    history = HISTORY_POINTS * (6 * layers + (steps if cfg.is_recurrent else 0) + 3) * HISTORY_BYTES_PER_VALUE
    return MemoryEstimate(parameters=params * item, optimiser=6 * params * item, checkpoint=3 * params * item,
                          workspace=workspace, data=data, history=history)


def available_memory() -> int | None:
    """Bytes this process may still allocate: MemAvailable from /proc/meminfo (else the free
    physical pages), capped by a cgroup v2 memory limit when one is set; None if unknown."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, AttributeError):
            return None
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            available = min(available, max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return available


def check_fits(cfg, available: int | None = None) -> MemoryEstimate:
    """The estimate for ``cfg``; ConfigError (with the estimate and the memory available)
    when it needs more than the machine has."""
    from gradtui.config import ConfigError

    estimate = estimate_memory(cfg)
    available = available_memory() if available is None else available
    if available is not None and estimate.total > available:
        raise ConfigError(
            f"this config needs about {format_bytes(estimate.total)} of memory ({estimate.describe()}), "
            f"more than the {format_bytes(available)} available on this machine; make the network smaller "
            f"(model.depth = {cfg.model.depth}, model.width = {cfg.model.width}) or the batch "
            f"(train.batch_size = {cfg.train.batch_size})")
    return estimate
