"""The learning-rate schedule: linear warmup, then constant, linear or cosine decay.

With base rate lr, W = train.warmup_steps, S = train.steps and t = 0, 1, 2, ... the update's
index since the schedule started (the run's start, or the last change of the schedule):
    warmup(t) = min(1, (t + 1) / W)                    (1 when W = 0)
    p(t)      = min(1, max(0, t - W) / max(1, S - W))  (progress of the decay)
    decay(t)  = 1                                       constant
                1 - p(t)                                linear (reaches 0 at t = S)
                (1 + cos(pi p(t))) / 2                  cosine (reaches 0 at t = S)
    lr(t)     = lr warmup(t) decay(t)
Warmup matters most for Adam on Post-LN Transformers (Xiong et al. 2020): Adam's first steps
have the full length lr whatever the gradient's size, and the output layers' gradients are
largest at initialisation.
"""

from __future__ import annotations

import math


def warmup_factor(t: int, warmup_steps: int) -> float:
    """min(1, (t + 1) / W), 1 without warmup."""
    return 1.0 if warmup_steps <= 0 else min(1.0, (t + 1) / warmup_steps)


def decay_factor(t: int, schedule: str, warmup_steps: int, steps: int) -> float:
    """1 (constant), 1 - p (linear) or (1 + cos(pi p))/2 (cosine), p the decay's progress."""
    if schedule == "constant":
        return 1.0
    p = min(1.0, max(0, t - warmup_steps) / max(1, steps - warmup_steps))
    if schedule == "linear":
        return 1.0 - p
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * p))
    raise ValueError(f"unknown schedule {schedule!r}")


def learning_rate(train, t: int) -> float:
    """The learning rate of update t (0-based) under the config's [train] section."""
    return train.lr * warmup_factor(t, train.warmup_steps) * decay_factor(t, train.schedule, train.warmup_steps, train.steps)


def is_scheduled(train) -> bool:
    """Whether the rate changes from step to step."""
    return train.warmup_steps > 0 or train.schedule != "constant"


def describe(train) -> str:
    """'lr 0.001' or 'lr 0.001, warmup 100, cosine' for headers and panels."""
    parts = [f"lr {train.lr:g}"]
    if train.warmup_steps > 0:
        parts.append(f"warmup {train.warmup_steps}")
    if train.schedule != "constant":
        parts.append(train.schedule)
    return ", ".join(parts)
