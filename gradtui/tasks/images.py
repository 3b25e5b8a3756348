"""Image classification tasks for convolutional networks, as (n, side*side) float64 rows
(one channel, row-major pixels) and integer labels; nothing is downloaded.

digits: the 8x8 handwritten digits that ship inside scikit-learn (1,797 images, 10 classes,
        Alpaydin & Kaynak's UCI set), read from the installed package by load_digits.
shapes: generated side x side images of three classes, 0 a bar (horizontal or vertical),
        1 a cross (a plus sign), 2 a square outline, each at a random position and scale,
        plus Gaussian pixel noise of standard deviation ``noise``.
Both are standardised to mean 0 and standard deviation 1 over all pixels.
"""

from __future__ import annotations

import numpy as np

DIGITS_COUNT = 1797
SHAPE_CLASSES = ("bar", "cross", "square")


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-12)


def digits(n: int, rng: np.random.Generator):
    """min(n, 1797) of scikit-learn's digits in a seeded order; labels 0-9."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    order = rng.permutation(len(bunch.target))[: min(n, DIGITS_COUNT)]
    return _standardise(bunch.data[order].astype(np.float64)), bunch.target[order].astype(np.int64)


def _draw(kind: int, side: int, rng: np.random.Generator) -> np.ndarray:
    image = np.zeros((side, side))
    size = int(rng.integers(max(3, side // 4), max(4, 3 * side // 4) + 1))  # extent in pixels
    top = int(rng.integers(0, side - size + 1))
    left = int(rng.integers(0, side - size + 1))
    if kind == 0:
        if rng.random() < 0.5:
            image[top + size // 2, left : left + size] = 1.0
        else:
            image[top : top + size, left + size // 2] = 1.0
    elif kind == 1:
        image[top + size // 2, left : left + size] = 1.0
        image[top : top + size, left + size // 2] = 1.0
    else:
        image[top, left : left + size] = image[top + size - 1, left : left + size] = 1.0
        image[top : top + size, left] = image[top : top + size, left + size - 1] = 1.0
    return image


def shapes(n: int, noise: float, rng: np.random.Generator, side: int = 16):
    """n images of bars, crosses and square outlines (labels 0, 1, 2, in turn) plus noise."""
    labels = np.arange(n) % len(SHAPE_CLASSES)
    images = np.stack([_draw(int(k), side, rng).ravel() for k in labels])
    images += noise * rng.standard_normal(images.shape)
    return _standardise(images), labels.astype(np.int64)
