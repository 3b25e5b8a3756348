"""The deep MLP: parameter layout, initialisation and calls into the fused kernel."""

from __future__ import annotations

import numpy as np

from gradtui.engine import mlp_kernel as K
from gradtui.engine.mlp_fused import WeightStep, fused_mlp_step
from gradtui.engine.mlp_train import mlp_train_steps
from gradtui.engine.train_loop import plain, update_fields
from gradtui.engine.activations import CODES, PRELU, SATURATION_LIMIT
from gradtui.engine.init import init_weight
from gradtui.engine.layout import ParamLayout
from gradtui.engine.mlp_workspace import WorkspaceDims, allocate, carve
from gradtui.engine.record import Layer
from gradtui.engine.subnormals import SUPPORTED as SUBNORMALS_FLUSHED

EVAL_CHUNK = 1024  # held-out examples per forward pass, so evaluation memory stays bounded


class MLPNetwork:
    """``depth`` hidden layers of ``width`` units, then a linear output layer.

    Layers are named "hidden.{l}" and "output"; parameters "hidden.{l}.W", ".b",
    ".gamma", ".beta" (batch norm), ".alpha" (prelu), "output.W", "output.b".
    """

    def __init__(self, cfg, n_in: int, n_out: int, classification: bool, dtype):
        m = cfg.model
        self.cfg = cfg
        self.dtype = np.dtype(dtype)
        self.depth, self.width = m.depth, m.width
        self.n_in, self.n_out, self.classification = n_in, n_out, classification
        self.act = CODES[m.activation]
        self.sat_limit = SATURATION_LIMIT.get(self.act, -1.0)
        self.exact = self.dtype == np.float64
        self.layout = ParamLayout()
        self.table = np.full((m.depth + 1, 8), -1, dtype=np.int64)
        fan_in = n_in
        for l in range(m.depth + 1):
            hidden = l < m.depth
            fan_out = m.width if hidden else n_out
            layer = self.layout.add_layer(f"hidden.{l}" if hidden else "output")
            row = self.table[l]
            row[K.COL_W] = self.layout.add(layer, "W", (fan_in, fan_out), weight=True)
            row[K.COL_B] = self.layout.add(layer, "b", (fan_out,))
            if hidden and m.batchnorm:
                row[K.COL_GAMMA] = self.layout.add(layer, "gamma", (fan_out,))
                row[K.COL_BETA] = self.layout.add(layer, "beta", (fan_out,))
            if hidden and m.activation == "prelu":
                row[K.COL_ALPHA] = self.layout.add(layer, "alpha", (fan_out,))
            row[K.COL_FAN_IN], row[K.COL_FAN_OUT] = fan_in, fan_out
            row[K.COL_RESIDUAL] = int(hidden and m.residual and fan_in == fan_out)
            fan_in = fan_out
        self.running_mean = np.zeros((m.depth, m.width), dtype=self.dtype)
        self.running_var = np.ones((m.depth, m.width), dtype=self.dtype)
        self.settings = K.MLPSettings(classification, self.act, m.leaky_slope, m.elu_alpha, m.batchnorm, self.exact,
                                      self.sat_limit)
        self._plain_settings = plain(self.settings)
        # train_steps sets the float32 flush of subnormals itself (Experiment then skips its own)
        self.flushes_itself = SUBNORMALS_FLUSHED and self.dtype == np.float32
        self._workspaces: dict[int, tuple] = {}  # batch -> _workspace_parts

    @property
    def layer_names(self) -> list[str]:
        return list(self.layout.layers)

    @property
    def layers(self) -> list[Layer]:
        """The layer table: hidden layers are linear maps followed by the activation."""
        act = self.cfg.model.activation
        return [Layer(name, "linear" if name != "output" else "output", act if name != "output" else None,
                      int(row[K.COL_FAN_IN]), int(row[K.COL_FAN_OUT]))
                for name, row in zip(self.layout.layers, self.table)]

    def init_params(self, theta: np.ndarray, rng: np.random.Generator) -> None:
        """Weights from the init scheme; biases N(bias_init, bias_std^2); gamma 1, beta 0, alpha prelu_init."""
        m = self.cfg.model
        for l in range(self.depth + 1):
            prefix = self.layout.layers[l]
            fan_in, fan_out = self.table[l, K.COL_FAN_IN], self.table[l, K.COL_FAN_OUT]
            W = init_weight(m.init, rng, fan_in, fan_out, m.init_gain, m.init_std)
            self.layout.view(theta, f"{prefix}.W")[:] = W
            b = rng.normal(0.0, m.bias_std, fan_out) if m.bias_std > 0 else np.zeros(fan_out)
            if l < self.depth:
                b = b + m.bias_init
            self.layout.view(theta, f"{prefix}.b")[:] = b
            if f"{prefix}.gamma" in self.layout:
                self.layout.view(theta, f"{prefix}.gamma")[:] = 1.0
                self.layout.view(theta, f"{prefix}.beta")[:] = 0.0
            if f"{prefix}.alpha" in self.layout:
                self.layout.view(theta, f"{prefix}.alpha")[:] = m.prelu_init

    def _workspace(self, batch: int) -> K.MLPWorkspace:
        return self._workspace_parts(batch)[0]

    def _workspace_parts(self, batch: int) -> tuple:
        """(the MLPWorkspace for ``batch`` examples, its buffer, its labels, its WorkspaceDims as a
        plain tuple): the training loop takes the last three and carves the same views
        (gradtui.engine.mlp_workspace)."""
        parts = self._workspaces.get(batch)
        if parts is None:
            d, w = self.depth, self.width
            per_layer_d = not K.derivative_from_output(self.act, self.cfg.model.batchnorm, self.table)
            classification = self.classification
            dims = WorkspaceDims(
                z_layers=d if self.act == PRELU else 1,  # phi's input (prelu keeps every layer's)
                zh_layers=d if self.cfg.model.batchnorm else 1,  # normalised z (batch norm)
                d_layers=d if per_layer_d else 0,  # phi' (tanh, sigmoid: recomputed from H)
                depth=d, batch=batch, width=w, n_in=self.n_in, n_out=self.n_out,
                yv_rows=1 if classification else batch, yv_cols=1 if classification else self.n_out,
            )
            buffer = allocate(dims, self.dtype)
            labels = np.zeros(batch if classification else 1, np.int64)
            parts = (carve(buffer, labels, dims), buffer, labels, plain(dims))
            if len(self._workspaces) > 4:
                self._workspaces.clear()
            self._workspaces[batch] = parts
        return parts

    def _targets(self, y: np.ndarray):
        if self.classification:
            return np.ascontiguousarray(y, dtype=np.int64), np.zeros((1, 1), self.dtype)
        return np.zeros(1, np.int64), np.ascontiguousarray(y, dtype=self.dtype)

    def loss_and_grad(self, theta, grad, x, y, train: bool, stats) -> float:
        """Forward and backward on (x, y): fills ``grad`` and, when ``stats`` is given, its arrays.

        ``stats`` is None or a dict of float64 arrays act_mean, act_std, dead_fraction,
        saturation, delta_norm (one entry per layer). ``train`` updates batch norm's running statistics.
        """
        x = np.ascontiguousarray(x, dtype=self.dtype)
        y_class, y_value = self._targets(y)
        # the weight gradients' sums land in a table of their own, unused here; no update
        layers = self.table.shape[0]
        sums_only = WeightStep(False, 0.0, 0.0, theta, np.zeros((layers, 6)), np.arange(layers))
        return fused_mlp_step(theta, grad, self.table, x, y_class, y_value, self._workspace(x.shape[0]),
                              self.settings, self.running_mean, self.running_var, train, _stats(stats), sums_only)

    def train_steps(self, theta, spare, states, grad, segments, x_all, y_all, batches, tr, t0,
                    stats, losses, totals, clipped, statistics: bool = True) -> tuple[int, bool, int]:
        """Several fused training steps in one kernel call (see gradtui.engine.mlp_train);
        ``statistics=False`` skips the activation statistics (the benchmark measures their cost)."""
        ws, buffer, labels, dims = self._workspace_parts(batches.shape[1])
        if self.classification:
            yc_all, yv_all = y_all, ws.yvb
        else:
            yc_all, yv_all = labels, y_all
        taken, flipped, status = mlp_train_steps(
            (theta, spare, *states), grad, segments, self.table, x_all, yc_all, yv_all, batches,
            buffer, labels, dims, self._plain_settings, self.running_mean, self.running_var, update_fields(tr), t0,
            statistics, (stats, losses, totals, clipped), self.flushes_itself)
        return int(taken), bool(flipped), int(status)

    def evaluate(self, theta, x, y) -> tuple[float, float | None]:
        """Mean loss over the examples and the accuracy (None for regression)."""
        total, correct = 0.0, 0
        for start in range(0, len(x), EVAL_CHUNK):
            xc = np.ascontiguousarray(x[start : start + EVAL_CHUNK], dtype=self.dtype)
            y_class, y_value = self._targets(y[start : start + EVAL_CHUNK])
            loss, ok = K.mlp_evaluate(theta, self.table, xc, y_class, y_value, self._workspace(xc.shape[0]),
                                      self.settings, self.running_mean, self.running_var)
            total += loss * len(xc)
            correct += ok
        return total / len(x), (correct / len(x) if self.classification else None)

    def extra_stats(self) -> dict[str, np.ndarray]:
        """Statistics beyond the per-layer ones (recurrent nets add the time profile); none here."""
        return {}

    def buffers(self) -> dict[str, np.ndarray]:
        """State that is not a parameter but carries over a swap (batch norm's running statistics)."""
        return {"running_mean": self.running_mean, "running_var": self.running_var}


def _stats(stats) -> K.MLPStats:
    """The kernel's view of ``stats`` (off, with placeholder arrays, when it is None)."""
    if stats is None:
        return K.MLPStats(False, *([_EMPTY] * 5))
    return K.MLPStats(True, stats["act_mean"], stats["act_std"], stats["dead_fraction"], stats["saturation"],
                      stats["delta_norm"])


_EMPTY = np.zeros(1)
