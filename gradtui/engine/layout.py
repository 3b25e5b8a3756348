"""The flat parameter vector: every parameter is a view into one contiguous array.

One array makes the global gradient norm, clipping and every optimiser a single
loop, makes a rolled-back step a pointer swap, and gives each kernel call a handful
of arguments instead of one per tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ParamLayout:
    """Names, shapes and offsets of the parameters in a flat vector.

    ``layers`` are the statistic layers in input-to-output order; each parameter
    belongs to one. Parameters marked ``weight`` (the matrices) are the ones whose
    norm, gradient norm and update ratio the statistics report and to which weight
    decay applies.
    """

    layers: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    shapes: list[tuple] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    layer_index: list[int] = field(default_factory=list)
    weight: list[bool] = field(default_factory=list)
    size: int = 0

    def add_layer(self, name: str) -> int:
        self.layers.append(name)
        return len(self.layers) - 1

    def add(self, layer: int, name: str, shape: tuple, weight: bool = False) -> int:
        """Append a parameter; returns its offset in the flat vector."""
        offset = self.size
        self.names.append(f"{self.layers[layer]}.{name}")
        self.shapes.append(tuple(int(s) for s in shape))
        self.offsets.append(offset)
        self.layer_index.append(layer)
        self.weight.append(weight)
        self.size += int(np.prod(shape))
        return offset

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def view(self, flat: np.ndarray, name: str) -> np.ndarray:
        """The parameter ``name`` as a writable view into ``flat``."""
        i = self.names.index(name)
        n = int(np.prod(self.shapes[i]))
        return flat[self.offsets[i] : self.offsets[i] + n].reshape(self.shapes[i])

    def to_dict(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Copies of every parameter, by name."""
        return {name: self.view(flat, name).copy() for name in self.names}

    def segments(self) -> np.ndarray:
        """(n_params, 4) int64 table: start, end, layer, is_weight, for the update kernel."""
        table = np.zeros((len(self.names), 4), dtype=np.int64)
        for i, shape in enumerate(self.shapes):
            table[i] = (self.offsets[i], self.offsets[i] + int(np.prod(shape)), self.layer_index[i], self.weight[i])
        return table
