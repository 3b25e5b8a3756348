"""Tasks: generated data sets, split into training and held-out examples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradtui.tasks import points


@dataclass(frozen=True)
class Dataset:
    """Training and held-out examples of one task.

    Classification targets are integer labels (``y`` of shape (n,) or (n, steps) for
    sequences); regression targets are floats of shape (n, outputs) or (n, steps, outputs).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_in: int
    n_out: int
    classification: bool
    baseline_loss: float | None = None
    tokens: bool = False  # x holds integer tokens 0 .. n_in - 1 and y labels -1 (not scored) .. n_out - 1


def _split(x, y, test_fraction, rng, n_in, n_out, classification, baseline=None) -> Dataset:
    order = rng.permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return Dataset(x[train], y[train], x[test], y[test], n_in, n_out, classification, baseline)


def make_dataset(cfg) -> Dataset:
    """Generate the config's task from ``data.seed`` (float64; the engine casts)."""
    d = cfg.data
    rng = np.random.default_rng(d.seed)
    if d.task in ("sort", "reverse", "recall"):
        from gradtui.tasks.tokens import make_token_dataset

        return make_token_dataset(cfg, rng)
    if d.task in ("adding", "copy", "sine"):
        from gradtui.tasks.sequences import make_sequence_dataset

        return make_sequence_dataset(cfg, rng)
    if d.task in ("digits", "shapes"):
        from gradtui.tasks import images

        if d.task == "digits":
            x, y, n_out = *images.digits(d.samples, rng), 10
        else:
            x, y, n_out = *images.shapes(d.samples, d.noise, rng, d.image_size), len(images.SHAPE_CLASSES)
        return _split(x, y, d.test_fraction, rng, x.shape[1], n_out, True, np.log(n_out))
    if d.task == "teacher":
        x, y = points.teacher(d.samples, d.noise, rng, d.features, d.outputs)
        return _split(x, y, d.test_fraction, rng, d.features, d.outputs, False)
    if d.task == "spirals":
        x, y = points.spirals(d.samples, d.noise, rng, d.classes)
        n_out = d.classes
    else:
        x, y = getattr(points, d.task)(d.samples, d.noise, rng)
        n_out = 2
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return _split(x, y.astype(np.int64), d.test_fraction, rng, 2, n_out, True, np.log(n_out))
