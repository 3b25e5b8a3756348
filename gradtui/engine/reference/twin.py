"""What every reference-tier network shares with the kernel network it twins."""

from __future__ import annotations

import numpy as np


class KernelTwin:
    """Layout, initialisation, buffers and extra statistics come from the kernel network
    ``net``, so the two compute on the same flat parameter vector."""

    def __init__(self, net):
        self.net = net
        self.layout = net.layout
        self.cfg = net.cfg

    @property
    def layer_names(self) -> list[str]:
        return self.net.layer_names

    def init_params(self, theta, rng) -> None:
        self.net.init_params(theta, rng)

    def buffers(self) -> dict[str, np.ndarray]:
        return self.net.buffers()

    def extra_stats(self) -> dict[str, np.ndarray]:
        return self.net.extra_stats()
