"""The reference tier's MLP: gradtui.engine.mlp's network computed by the plain NumPy NumpyMLP.

It shares the kernel network's parameter layout, initialisation and buffers (batch norm's
running statistics), so the Experiment can swap one for the other between two steps with
nothing to convert. The statistics follow gradtui.engine.mlp_kernel's definitions.
"""

from __future__ import annotations

import numpy as np

from gradtui.engine.activations import CODES, SATURATION_LIMIT
from gradtui.engine.reference.numpy_mlp import NumpyMLP
from gradtui.engine.reference.numpy_rnn import fro
from gradtui.engine.reference.twin import KernelTwin

EVAL_CHUNK = 1024


class ReferenceMLP(KernelTwin):
    """Plain NumPy twin of an MLPNetwork (``net``), with its layout and buffers."""

    def __init__(self, net):
        m = net.cfg.model
        super().__init__(net)
        self.model = NumpyMLP(m.depth, m.width, net.n_in, net.n_out, m.activation, batchnorm=m.batchnorm,
                              residual=m.residual, classification=net.classification, dtype=net.dtype,
                              leaky_slope=m.leaky_slope, elu_alpha=m.elu_alpha)
        self.sat_limit = SATURATION_LIMIT.get(CODES[m.activation], -1.0)

    def _bind(self, theta) -> None:
        self.model.params = {name: self.layout.view(theta, name) for name in self.layout.names}

    def loss_and_grad(self, theta, grad, x, y, train: bool, stats) -> float:
        """Forward and backward on (x, y) into ``grad``; per-layer statistics into ``stats`` when given."""
        self._bind(theta)
        running = (self.net.running_mean, self.net.running_var) if train and self.cfg.model.batchnorm else None
        x = np.asarray(x, self.net.dtype)
        loss, grads, deltas, cache = self.model._backward(x, y, running=running)
        for name, g in grads.items():
            self.layout.view(grad, name)[:] = g
        if stats is not None:
            depth = self.cfg.model.depth
            for l in range(depth + 1):
                out = cache[l]["out"]
                stats["act_mean"][l] = np.mean(out, dtype=np.float64)
                stats["act_std"][l] = np.std(out, dtype=np.float64)
                stats["delta_norm"][l] = fro(deltas[l])
                if l < depth:
                    dphi = cache[l]["dphi"]
                    stats["dead_fraction"][l] = np.mean(np.all(dphi == 0, axis=0))
                    stats["saturation"][l] = np.mean(dphi < self.sat_limit)
                else:
                    stats["dead_fraction"][l] = stats["saturation"][l] = 0.0
        return float(loss)

    def evaluate(self, theta, x, y) -> tuple[float, float | None]:
        """Mean loss over the examples and the accuracy (None for regression); batch norm
        normalises with its running statistics."""
        self._bind(theta)
        running = (self.net.running_mean, self.net.running_var)
        total, correct = 0.0, 0
        for start in range(0, len(x), EVAL_CHUNK):
            xc = np.asarray(x[start : start + EVAL_CHUNK], self.net.dtype)
            yc = y[start : start + EVAL_CHUNK]
            logits, _ = self.model.forward(xc, running=running, use_running=True)
            loss, _ = self.model.loss(logits, yc)
            total += loss * len(xc)
            if self.net.classification:
                correct += int(np.sum(np.argmax(logits, axis=1) == np.asarray(yc).reshape(-1)))
        return total / len(x), (correct / len(x) if self.net.classification else None)
