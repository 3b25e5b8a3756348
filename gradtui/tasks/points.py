"""Two-dimensional classification tasks and the teacher regression task.

Every generator takes the number of examples, the noise level and a NumPy
Generator, and returns float64 inputs and targets; nothing is downloaded.
"""

from __future__ import annotations

import numpy as np


def spirals(n: int, noise: float, rng: np.random.Generator, classes: int = 3):
    """``classes`` interleaved spiral arms; label = arm. Radius grows with the angle t in [0, 1]."""
    labels = np.arange(n) % classes
    t = rng.uniform(0.0, 1.0, n)
    angle = labels * (2.0 * np.pi / classes) + t * 3.0 * np.pi
    radius = 0.2 + 0.8 * t
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return x + noise * rng.standard_normal(x.shape), labels


def moons(n: int, noise: float, rng: np.random.Generator):
    """Two interleaving half circles."""
    labels = np.arange(n) % 2
    t = rng.uniform(0.0, np.pi, n)
    x = np.where(labels[:, None] == 0,
                 np.stack([np.cos(t), np.sin(t)], axis=1),
                 np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1))
    return x + noise * rng.standard_normal(x.shape), labels


def circles(n: int, noise: float, rng: np.random.Generator):
    """A small circle (label 1) inside a large one (label 0)."""
    labels = np.arange(n) % 2
    t = rng.uniform(0.0, 2.0 * np.pi, n)
    radius = np.where(labels == 0, 1.0, 0.5)
    x = np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)
    return x + noise * rng.standard_normal(x.shape), labels


def xor(n: int, noise: float, rng: np.random.Generator):
    """Points in the four quadrants; label = sign(x0) != sign(x1)."""
    x = rng.uniform(-1.0, 1.0, (n, 2))
    labels = ((x[:, 0] > 0) != (x[:, 1] > 0)).astype(np.int64)
    return x + noise * rng.standard_normal(x.shape), labels


def teacher(n: int, noise: float, rng: np.random.Generator, features: int = 8, outputs: int = 1):
    """Regression on a random two-hidden-layer tanh teacher network's outputs, plus noise."""
    x = rng.standard_normal((n, features))
    h = x
    for fan_out in (32, 32):
        h = np.tanh(h @ rng.normal(0.0, np.sqrt(2.0 / h.shape[1]), (h.shape[1], fan_out)))
    y = h @ rng.normal(0.0, 1.0 / np.sqrt(h.shape[1]), (h.shape[1], outputs))
    y /= y.std() + 1e-12
    return x, y + noise * rng.standard_normal(y.shape)
