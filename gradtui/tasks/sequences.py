"""Sequence tasks for the recurrent nets: adding, copy and sine.

Every generator returns float64 inputs of shape (n, T_total, n_in) and its targets;
nothing is downloaded. ``make_sequence_dataset`` splits them like the 2-D tasks.

adding (Hochreiter & Schmidhuber 1997, two-channel form), T = data.seq_len:
    channel 0 holds values ~ U[0, 1]; channel 1 is 1 at one position drawn from the first
    half [0, T//2) and one from the second half [T//2, T), else 0. Target (n, 1): the sum
    of the two marked values, read out after the last step. Loss: mean squared error.
    Always predicting 1 (the mean) scores Var(a + b) = 2/12 = 1/6: the baseline.
copy (Arjovsky, Shah & Bengio 2016), T = data.seq_len, T_total = T + 20:
    categories 0 = blank, 1..8 = symbols, 9 = delimiter, one-hot inputs (n_in = 10).
    Steps 0..9 hold 10 symbols drawn uniformly from 1..8, then T - 1 blanks, the delimiter
    at step T + 9, then 10 blanks during which the net must repeat the 10 symbols.
    Targets (n, 10) int: the symbols, read out at the last 10 steps over 10 classes.
    Loss: softmax cross-entropy summed over the 10 output steps and divided by T + 20,
    i.e. the paper's average over all T + 20 steps with the blank outputs of the first
    T + 10 steps taken as predicted perfectly (they carry no information, so the engine
    does not read them out). The memoryless baseline, uniform over the 8 symbols at each
    output step, then scores exactly 10 ln 8 / (T + 20), as in the paper.
sine, T = data.seq_len:
    s_t = sum over 3 components of a_k sin(w_k t + p_k), with w_k ~ U[0.1, 0.6] rad/step,
    a_k ~ U[0.5, 1], p_k ~ U[0, 2 pi] per example, scaled to unit mean square. The input is
    the noisy observation s_t + data.noise * N(0, 1) (one channel); the target at every step
    is the clean next value s_{t+1}, shape (n, T, 1). Loss: mean squared error over steps.
    The baseline is the loss of always predicting 0 (the mean square of the targets, ~1).
"""

from __future__ import annotations

import numpy as np

from gradtui.tasks import Dataset, _split

COPY_SYMBOLS = 10  # symbols to remember
COPY_ALPHABET = 8  # symbols drawn from 1..8
COPY_CLASSES = 10  # blank, 8 symbols, delimiter
COPY_EXTRA = 20  # T_total = T + 20


def adding(n: int, T: int, rng: np.random.Generator):
    """x (n, T, 2), y (n, 1): the adding problem."""
    if T < 2:
        raise ValueError("the adding problem needs seq_len >= 2")
    x = np.zeros((n, T, 2))
    x[:, :, 0] = rng.uniform(0.0, 1.0, size=(n, T))
    rows = np.arange(n)
    first = rng.integers(0, T // 2, size=n)
    second = rng.integers(T // 2, T, size=n)
    x[rows, first, 1] = 1.0
    x[rows, second, 1] = 1.0
    y = (x[rows, first, 0] + x[rows, second, 0]).reshape(n, 1)
    return x, y


def copy_memory(n: int, T: int, rng: np.random.Generator):
    """x (n, T + 20, 10) one-hot, y (n, 10) int64: the copy-memory task."""
    total = T + COPY_EXTRA
    symbols = rng.integers(1, COPY_ALPHABET + 1, size=(n, COPY_SYMBOLS))
    codes = np.zeros((n, total), dtype=np.int64)
    codes[:, :COPY_SYMBOLS] = symbols
    codes[:, T + COPY_SYMBOLS - 1] = COPY_CLASSES - 1  # delimiter
    x = np.zeros((n, total, COPY_CLASSES))
    np.put_along_axis(x, codes[:, :, None], 1.0, axis=2)
    return x, symbols.astype(np.int64)


def sine(n: int, T: int, noise: float, rng: np.random.Generator, components: int = 3):
    """x (n, T, 1) noisy sum of sines, y (n, T, 1) the clean next value."""
    t = np.arange(T + 1)[None, None, :]
    w = rng.uniform(0.1, 0.6, size=(n, components, 1))
    a = rng.uniform(0.5, 1.0, size=(n, components, 1))
    p = rng.uniform(0.0, 2.0 * np.pi, size=(n, components, 1))
    s = np.sum(a * np.sin(w * t + p), axis=1)  # (n, T + 1)
    s /= np.sqrt(np.sum(a[:, :, 0] ** 2, axis=1, keepdims=True) / 2.0)
    x = (s[:, :T] + noise * rng.standard_normal((n, T)))[:, :, None]
    y = s[:, 1:, None]
    return x, y


def make_sequence_dataset(cfg, rng: np.random.Generator) -> Dataset:
    """The config's sequence task, split into training and held-out examples."""
    d = cfg.data
    if d.seq_len < 2:
        raise ValueError("data.seq_len must be at least 2")
    if d.task == "adding":
        x, y = adding(d.samples, d.seq_len, rng)
        return _split(x, y, d.test_fraction, rng, 2, 1, False, 1.0 / 6.0)
    if d.task == "copy":
        x, y = copy_memory(d.samples, d.seq_len, rng)
        baseline = COPY_SYMBOLS * np.log(COPY_ALPHABET) / (d.seq_len + COPY_EXTRA)
        return _split(x, y, d.test_fraction, rng, COPY_CLASSES, COPY_CLASSES, True, float(baseline))
    if d.task == "sine":
        x, y = sine(d.samples, d.seq_len, d.noise, rng)
        return _split(x, y, d.test_fraction, rng, 1, 1, False, float(np.mean(y**2)))
    raise ValueError(f"unknown sequence task {d.task!r}")
