"""Token-sequence tasks for the Transformer: sort, reverse and associative recall.

Inputs are integer tokens of shape (n, T); targets are integer labels of shape (n, T), -1 where
a position is not scored. All three need attention (each output depends on tokens elsewhere in
the sequence), and answering every scored position by chance scores ln 10, the baseline.

sort, T = data.seq_len: T digits drawn uniformly from 0..9; the target at position t is the
    t-th smallest digit (the sorted sequence). Every position is scored.
reverse: T digits; the target at position t is the digit at position T - 1 - t.
recall (associative recall, as in Ba et al. 2016): K = (T - 1) // 2 pairs "key value" with
    distinct keys (tokens 10 .. 10 + max(26, K) - 1) and values 0..9, a filler token where T is
    even, then one of the keys as a query at the last position, whose target is that key's value.
    Only the last position is scored.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gradtui.tasks import Dataset, _split

DIGITS = 10
LETTERS = 26


def sort_digits(n: int, T: int, rng: np.random.Generator):
    """x (n, T) digits, y (n, T) the same digits in increasing order."""
    x = rng.integers(0, DIGITS, size=(n, T))
    return x, np.sort(x, axis=1)


def reverse_digits(n: int, T: int, rng: np.random.Generator):
    """x (n, T) digits, y (n, T) the sequence reversed."""
    x = rng.integers(0, DIGITS, size=(n, T))
    return x, x[:, ::-1].copy()


def recall_vocabulary(T: int) -> int:
    """Input tokens of the recall task at length T: digits, keys, the filler."""
    return DIGITS + max(LETTERS, (T - 1) // 2) + 1


def associative_recall(n: int, T: int, rng: np.random.Generator):
    """x (n, T) tokens "k1 v1 k2 v2 ... [filler] q", y (n, T): -1 but the last position, value of q."""
    pairs = (T - 1) // 2
    keys = max(LETTERS, pairs)
    x = np.full((n, T), DIGITS + keys, dtype=np.int64)  # filler
    y = np.full((n, T), -1, dtype=np.int64)
    for i in range(n):
        k = rng.choice(keys, size=pairs, replace=False) + DIGITS
        v = rng.integers(0, DIGITS, size=pairs)
        x[i, 0 : 2 * pairs : 2] = k
        x[i, 1 : 2 * pairs : 2] = v
        j = rng.integers(0, pairs)
        x[i, T - 1] = k[j]
        y[i, T - 1] = v[j]
    return x, y


def make_token_dataset(cfg, rng: np.random.Generator) -> Dataset:
    """The config's token task, split into training and held-out sequences."""
    d = cfg.data
    if d.task == "sort":
        x, y = sort_digits(d.samples, d.seq_len, rng)
        n_in = DIGITS
    elif d.task == "reverse":
        x, y = reverse_digits(d.samples, d.seq_len, rng)
        n_in = DIGITS
    elif d.task == "recall":
        if d.seq_len < 3:
            raise ValueError("the recall task needs seq_len >= 3 (one key-value pair and a query)")
        x, y = associative_recall(d.samples, d.seq_len, rng)
        n_in = recall_vocabulary(d.seq_len)
    else:
        raise ValueError(f"unknown token task {d.task!r}")
    data = _split(x.astype(np.int64), y.astype(np.int64), d.test_fraction, rng, n_in, DIGITS, True, float(np.log(DIGITS)))
    return dataclasses.replace(data, tokens=True)
