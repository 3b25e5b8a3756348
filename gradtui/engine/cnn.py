"""The convolutional network (plain CNN or ResNet): parameter layout, initialisation and
calls into the fused kernel (gradtui.engine.cnn_kernel has the maths).

Layers are named "conv.{l}" and "output". Parameters:
    conv.{l}.W (9 C_in, C_out)   3x3 kernel, rows ordered (ky, kx, c_in); fan-in 9 C_in, fan-out 9 C_out
    conv.{l}.b (C_out)           bias; .gamma, .beta (batch norm); .alpha (prelu, one per channel)
    conv.{l}.P (C_src, C_out)    1x1 projection of a residual block's input (fan-in C_src)
    output.W (C, n_out), output.b (n_out)   the linear head after global average pooling
The network's shape (stages, strides, skips) comes from gradtui.config.cnn_plan.
"""

from __future__ import annotations

import numpy as np

from gradtui.config import ConfigError
from gradtui.config.cnn_plan import KERNEL, image_side, plan
from gradtui.engine import cnn_kernel as K
from gradtui.engine.activations import CODES, PRELU, SATURATION_LIMIT
from gradtui.engine.init import init_weight
from gradtui.engine.layout import ParamLayout
from gradtui.engine.record import Layer
from gradtui.engine.cnn_train import cnn_train_steps
from gradtui.engine.train_loop import STAT_ROWS, update_fields

EVAL_CHUNK = 256  # held-out images per forward pass, so evaluation memory stays bounded
# The im2col matrix is built a chunk at a time (gradtui.engine.cnn_kernel.conv_forward): a
# chunk holds as many rows as keep each of its products (rows x 9 C_in x C_out multiply-adds)
# within 100^3, where OpenBLAS multiplies without packing its operands (its small-matrix
# kernels). Measured on one core (AVX-512), 8192 x 288 x 32 in chunks: 108 rows ran the three
# products at 86-99 GFLOP/s, 120 rows (past the limit) at 63-76, the whole batch at 32-54.
SMALL_PRODUCT = 100 ** 3
SKIP_CODES = {"none": K.SKIP_NONE, "identity": K.SKIP_IDENTITY, "projection": K.SKIP_PROJECTION}
TAPS = KERNEL * KERNEL


def check_labels(y: np.ndarray, n_out: int, split: str) -> None:
    """Class labels must be integers in 0..n_out-1."""
    y = np.asarray(y)
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_out):
        raise ConfigError(f"{split} labels must be integers from 0 to {n_out - 1} for {n_out} classes; "
                          f"found values from {y.min()} to {y.max()}")


class CNNNetwork:
    """``model.depth`` 3x3 convolutions of ``model.width`` channels in ``model.stages`` stages,
    global average pooling and a linear head; residual blocks with ``model.residual``."""

    def __init__(self, cfg, data, dtype):
        m = cfg.model
        self.cfg = cfg
        self.dtype = np.dtype(dtype)
        self.exact = self.dtype == np.float64
        self.side = image_side(cfg)
        self.channels = data.n_in // (self.side * self.side)
        if self.channels * self.side * self.side != data.n_in or not data.classification:
            raise ConfigError(f"model.kind 'cnn' needs images with classes; data.task {cfg.data.task!r} gives "
                              f"{data.n_in} inputs per example, not {self.side}x{self.side} pixels")
        self.n_out = data.n_out
        for split, y in (("training", data.y_train), ("held-out", data.y_test)):
            check_labels(y, self.n_out, split)
        self.depth, self.width = m.depth, m.width
        self.act = CODES[m.activation]
        self.sat_limit = SATURATION_LIMIT.get(self.act, -1.0)
        self.specs = plan(m.depth, m.width, m.stages, m.residual, self.side, self.channels)
        self.layout = ParamLayout()
        self.table = np.full((m.depth + 1, K.N_COLS), -1, dtype=np.int64)
        positions = 0  # running offset into the per-image activation buffers
        for l, spec in enumerate(self.specs):
            layer = self.layout.add_layer(f"conv.{l}")
            row = self.table[l]
            row[K.COL_W] = self.layout.add(layer, "W", (TAPS * spec.c_in, spec.c_out), weight=True)
            row[K.COL_B] = self.layout.add(layer, "b", (spec.c_out,))
            if m.batchnorm:
                row[K.COL_GAMMA] = self.layout.add(layer, "gamma", (spec.c_out,))
                row[K.COL_BETA] = self.layout.add(layer, "beta", (spec.c_out,))
            if m.activation == "prelu":
                row[K.COL_ALPHA] = self.layout.add(layer, "alpha", (spec.c_out,))
            if spec.skip == "projection":
                c_src = self.channels if spec.source < 0 else self.specs[spec.source].c_out
                row[K.COL_P] = self.layout.add(layer, "P", (c_src, spec.c_out), weight=True)
            row[K.COL_C_IN], row[K.COL_C_OUT] = spec.c_in, spec.c_out
            row[K.COL_S_IN], row[K.COL_S_OUT], row[K.COL_STRIDE] = spec.side_in, spec.side_out, spec.stride
            row[K.COL_SKIP], row[K.COL_SRC] = SKIP_CODES[spec.skip], spec.source
            row[K.COL_OFF] = positions  # times the batch size: see _offsets
            positions += spec.side_out ** 2 * spec.c_out
        self.positions = positions
        head = self.layout.add_layer("output")
        self.table[m.depth, K.COL_W] = self.layout.add(head, "W", (m.width, self.n_out), weight=True)
        self.table[m.depth, K.COL_B] = self.layout.add(head, "b", (self.n_out,))
        self.table[m.depth, K.COL_C_IN], self.table[m.depth, K.COL_C_OUT] = m.width, self.n_out
        self.running_mean = np.zeros((m.depth, m.width), dtype=self.dtype)
        self.running_var = np.ones((m.depth, m.width), dtype=self.dtype)
        self._workspaces: dict[int, tuple] = {}
        # elements of one im2col chunk (a layer's rows: this over 9 C_in)
        self.chunk_size = SMALL_PRODUCT // max(s.c_out for s in self.specs)

    @property
    def layer_names(self) -> list[str]:
        return list(self.layout.layers)

    @property
    def layers(self) -> list[Layer]:
        """The layer table: 3x3 convolutions (one unit sees 9 C_in inputs) followed by the
        activation, then the linear head on the pooled channels."""
        act, names = self.cfg.model.activation, self.layer_names
        out = [Layer(name, "conv", act, int(TAPS * row[K.COL_C_IN]), int(row[K.COL_C_OUT]))
               for name, row in zip(names[:-1], self.table[:-1])]
        head = self.table[-1]
        return out + [Layer(names[-1], "output", None, int(head[K.COL_C_IN]), int(head[K.COL_C_OUT]))]

    def init_params(self, theta: np.ndarray, rng: np.random.Generator) -> None:
        """Kernels from the init scheme with fan-in 9 C_in and fan-out 9 C_out (projections:
        C_src and C_out); biases N(bias_init, bias_std^2); gamma 1, beta 0, alpha prelu_init."""
        m = self.cfg.model
        for l, spec in enumerate(self.specs):
            prefix = f"conv.{l}"
            W = init_weight(m.init, rng, TAPS * spec.c_in, spec.c_out, m.init_gain, m.init_std)
            if m.init in ("xavier", "xavier_normal"):  # a kernel's fan-out is 9 C_out, not C_out
                W = W * np.sqrt((TAPS * spec.c_in + spec.c_out) / (TAPS * (spec.c_in + spec.c_out)))
            self.layout.view(theta, f"{prefix}.W")[:] = W
            b = rng.normal(0.0, m.bias_std, spec.c_out) if m.bias_std > 0 else np.zeros(spec.c_out)
            self.layout.view(theta, f"{prefix}.b")[:] = b + m.bias_init
            if m.batchnorm:
                self.layout.view(theta, f"{prefix}.gamma")[:] = 1.0
                self.layout.view(theta, f"{prefix}.beta")[:] = 0.0
            if m.activation == "prelu":
                self.layout.view(theta, f"{prefix}.alpha")[:] = m.prelu_init
            if f"{prefix}.P" in self.layout:
                P = self.layout.view(theta, f"{prefix}.P")
                P[:] = init_weight(m.init, rng, P.shape[0], P.shape[1], m.init_gain, m.init_std)
        W = init_weight(m.init, rng, m.width, self.n_out, m.init_gain, m.init_std)
        self.layout.view(theta, "output.W")[:] = W
        self.layout.view(theta, "output.b")[:] = rng.normal(0.0, m.bias_std, self.n_out) if m.bias_std > 0 else 0.0

    # -- buffers ---------------------------------------------------------------------------
    def _workspace(self, batch: int) -> tuple:
        ws = self._workspaces.get(batch)
        if ws is None:
            m, dt = self.cfg.model, self.dtype
            table = self.table.copy()
            table[:-1, K.COL_OFF] *= batch
            total = batch * self.positions
            largest = max(batch * s.side_out ** 2 * s.c_out for s in self.specs)
            taps = max(TAPS * max(s.c_in, s.c_out) for s in self.specs)
            wide = max(batch * s.side_out ** 2 * max(s.c_in, s.c_out) for s in self.specs)
            kernels = max(TAPS * s.c_in * s.c_out for s in self.specs)
            scratch = max(kernels, m.width * self.n_out, m.width * self.channels)
            ws = (
                table,
                np.zeros(total if self.act == PRELU else largest, dt),  # Z: phi's input (prelu keeps every layer's)
                np.zeros(total if m.batchnorm else 1, dt),  # ZH: normalised z
                np.zeros(total, dt),  # D: phi'
                np.zeros(total, dt),  # H: layer outputs
                np.zeros((m.depth, m.width), dt),  # inv_std
                np.zeros(max(self.chunk_size, taps), dt),  # cols: a chunk of the im2col matrix (and of dcols)
                np.zeros(kernels, dt),  # part: a chunk's share of a kernel's gradient
                np.zeros(wide, dt),  # sub: a projection's subsampled input
                np.zeros(wide, dt),  # skip: its output (backward: d sub)
                np.zeros((batch, m.width), dt),  # pooled
                np.zeros((batch, self.n_out), dt),  # logits
                np.zeros((batch, self.n_out), dt),  # dlogits
                np.zeros(total, dt),  # dH
                np.zeros(largest, dt),  # DZ
                np.zeros(largest if m.batchnorm else 1, dt),  # DY
                np.zeros(scratch, dt),  # scratch for transposed weights
            )
            if len(self._workspaces) > 4:
                self._workspaces.clear()
            self._workspaces[batch] = ws
        return ws

    def _images(self, x) -> np.ndarray:
        """(batch, side*side*channels) rows -> the kernel's (batch*side*side, channels) matrix."""
        x = np.ascontiguousarray(x, dtype=self.dtype)
        return x.reshape(x.shape[0] * self.side * self.side, self.channels)

    # -- the network protocol Experiment uses ------------------------------------------------
    def loss_and_grad(self, theta, grad, x, y, train: bool, stats) -> float:
        """Forward and backward on (x, y): fills ``grad`` and, when ``stats`` is given, its arrays
        (act_mean, act_std, dead_fraction, saturation, delta_norm; one entry per layer).
        ``train`` updates batch norm's running statistics."""
        batch = len(x)
        (table, Z, ZH, D, H, inv_std, cols, part, sub, skip, pooled, logits, dlogits,
         dH, DZ, DY, scratch) = self._workspace(batch)
        s = stats if stats is not None else _EMPTY_STATS
        m = self.cfg.model
        y_class = np.ascontiguousarray(y, dtype=np.int64)
        return K.cnn_step(
            theta, grad, table, self._images(x), y_class, logits, True, self.act,
            m.leaky_slope, m.elu_alpha, m.batchnorm, self.exact, self.sat_limit,
            Z, ZH, D, H, inv_std, self.running_mean, self.running_var,
            cols, part, sub, skip, pooled, logits, dlogits, dH, DZ, DY, scratch, train, stats is not None,
            s["act_mean"], s["act_std"], s["dead_fraction"], s["saturation"], s["delta_norm"])

    def train_steps(self, theta, spare, states, grad, segments, x_all, y_all, batches, tr, t0,
                    stats, losses, totals, clipped, statistics: bool = True) -> tuple[int, bool, int]:
        """Several fused training steps in one kernel call (see gradtui.engine.cnn_train)."""
        batch = batches.shape[1]
        (table, Z, ZH, D, H, inv_std, cols, part, sub, skip, pooled, logits, dlogits,
         dH, DZ, DY, scratch) = self._workspace(batch)
        m = self.cfg.model
        xb = np.zeros((batch, x_all.shape[1]), self.dtype)
        yb = np.zeros(batch, np.int64)
        taken, flipped, status = cnn_train_steps(
            (theta, spare, *states), grad, segments, table, x_all, y_all, batches,
            self.channels, self.act, m.leaky_slope, m.elu_alpha, m.batchnorm, self.exact, self.sat_limit,
            Z, ZH, D, H, inv_std, self.running_mean, self.running_var,
            cols, part, sub, skip, pooled, logits, dlogits, dH, DZ, DY, scratch, xb, yb,
            update_fields(tr), t0, statistics, (stats, losses, totals, clipped))
        return int(taken), bool(flipped), int(status)

    def evaluate(self, theta, x, y) -> tuple[float, float]:
        """Mean cross-entropy over the examples and the accuracy (batch norm: running statistics)."""
        m = self.cfg.model
        total, correct = 0.0, 0
        for start in range(0, len(x), EVAL_CHUNK):
            xc = x[start : start + EVAL_CHUNK]
            yc = np.ascontiguousarray(y[start : start + EVAL_CHUNK], dtype=np.int64)
            (table, Z, ZH, D, H, inv_std, cols, part, sub, skip, pooled, logits, dlogits,
             _, _, _, _) = self._workspace(len(xc))
            loss, ok = K.cnn_evaluate(
                theta, table, self._images(xc), yc, self.act, m.leaky_slope, m.elu_alpha, m.batchnorm,
                self.exact, Z, ZH, D, H, inv_std, self.running_mean, self.running_var,
                cols, part, sub, skip, pooled, logits, dlogits)
            total += loss * len(xc)
            correct += ok
        return total / len(x), correct / len(x)

    def active_pattern(self, batch: int) -> np.ndarray:
        """Where phi' == 1 (the positive side of relu-type units) in the last forward pass of this
        batch size, every layer and unit: a finite-difference check uses it to tell that a
        perturbation crossed no kink."""
        return self._workspace(batch)[3] == 1.0

    def extra_stats(self) -> dict[str, np.ndarray]:
        """Statistics beyond the per-layer ones; none for a CNN."""
        return {}

    def buffers(self) -> dict[str, np.ndarray]:
        """State that is not a parameter but carries over a swap (batch norm's running statistics)."""
        return {"running_mean": self.running_mean, "running_var": self.running_var}


_EMPTY_STATS = {k: np.zeros(1) for k in STAT_ROWS}
