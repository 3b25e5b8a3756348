"""The sweep's grid: `--grid KEY=SPEC` parsed into axes, and their cross product into cells.

A SPEC is one of
    a,b,c              a list (numbers, names, true/false)
    start:stop:step    a linear range, both ends included when the steps land on stop
    start:stop:xF      a geometric range: start, start*F, start*F^2, ... up to stop (F > 1)
A KEY is any config key (`model.depth`) or `sigma_w2`, the weight variance sigma_w^2 =
fan_in * Var(W) of the hidden layers (Poole et al. 2016): the sweep sets model.init_gain to
sqrt(sigma_w^2 / (n Var_1(W))), Var_1 being the init scheme's variance at gain 1 and width n
(gradtui.theory.weight_var), so every scheme but 'orthogonal' keeps its shape and takes the
requested variance. A cell is one point of the cross product and one seed (train.seed).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from gradtui.config import Config, ConfigError, key_specs
from gradtui.config.model import closest, parse_value

SIGMA_W2 = "sigma_w2"
MAX_CELLS = 400  # a larger sweep needs --yes
_MAX_AXIS = 10_000  # a range longer than this is a typo, not a sweep


@dataclass(frozen=True)
class Axis:
    """One swept key and its values, in the order given."""

    key: str
    values: tuple
    spec: str


@dataclass(frozen=True)
class Cell:
    """One run of the sweep: a value per axis and a seed."""

    values: tuple  # one per axis, in axis order
    seed: int

    def ident(self, axes) -> str:
        """A stable name for the cell, used to skip it on resume: `model.depth=10,sigma_w2=1.5,seed=0`."""
        parts = [f"{a.key}={_text(v)}" for a, v in zip(axes, self.values)]
        return ",".join(parts + [f"seed={self.seed}"])


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, 12))
    return str(value)


def parse_axis(text: str) -> Axis:
    """`model.depth=10:100:10` -> Axis; raises ConfigError naming what is wrong and what is allowed."""
    key, sep, spec = text.partition("=")
    key, spec = key.strip(), spec.strip()
    specs = key_specs()
    if not sep or not key:
        raise ConfigError(f"--grid {text!r} is not KEY=SPEC (for example --grid model.depth=10:100:10)")
    if key != SIGMA_W2 and key not in specs:
        raise ConfigError(f"--grid: unknown key {key}{closest(key, list(specs) + [SIGMA_W2])} "
                          f"(any config key, as in `gradtui check`, or {SIGMA_W2})")
    if not spec:
        raise ConfigError(f"--grid {key}= has no values: give a list a,b,c, a range start:stop:step or start:stop:xFACTOR")
    numeric = key == SIGMA_W2 or specs[key].type in (int, float)
    if ":" in spec:
        if not numeric:
            raise ConfigError(f"--grid {key}={spec}: a range needs a numeric key; {key} takes a list such as a,b,c")
        values = _range(key, spec)
    else:
        items = [s for s in (p.strip() for p in spec.split(",")) if s]
        if not items:
            raise ConfigError(f"--grid {key}={spec!r} is an empty list")
        values = [_number(key, s) for s in items] if key == SIGMA_W2 else [parse_value(specs[key], s) for s in items]
    if key != SIGMA_W2 and specs[key].type is int:
        values = [_whole(key, v) for v in values]
    values = list(dict.fromkeys(values))  # repeated values once
    if key == SIGMA_W2 and any(v <= 0 for v in values):
        raise ConfigError(f"--grid {key}: sigma_w^2 must be above 0")
    return Axis(key, tuple(values), spec)


def _number(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--grid {key}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"--grid {key}: {text!r} is not a finite number")
    return value


def _whole(key: str, value):
    if isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"--grid {key}: {value:g} is not a whole number ({key} is an integer)")
    return int(value)


def _range(key: str, spec: str) -> list:
    parts = spec.split(":")
    if len(parts) != 3:
        raise ConfigError(f"--grid {key}={spec}: a range is start:stop:step (linear) or start:stop:xFACTOR (geometric)")
    start, stop = _number(key, parts[0]), _number(key, parts[1])
    step_text = parts[2].strip()
    geometric = step_text[:1].lower() == "x"
    step = _number(key, step_text[1:] if geometric else step_text)
    if geometric:
        if start <= 0 or stop <= 0 or step <= 1:
            raise ConfigError(f"--grid {key}={spec}: a geometric range needs start > 0, stop > 0 and a factor above 1")
        count = math.floor(math.log(stop / start) / math.log(step) + 1e-9) + 1 if stop >= start else 0
        values = [start * step**i for i in range(max(count, 0))]
        values = [float(f"{v:.12g}") for v in values]
    else:
        if step <= 0:
            raise ConfigError(f"--grid {key}={spec}: the step must be above 0 (got {step:g})")
        count = math.floor((stop - start) / step + 1e-9) + 1 if stop >= start else 0
        values = [float(f"{start + i * step:.12g}") for i in range(max(count, 0))]
    if not values:
        raise ConfigError(f"--grid {key}={spec} is an empty range: stop ({stop:g}) is below start ({start:g})")
    if len(values) > _MAX_AXIS:
        raise ConfigError(f"--grid {key}={spec} has {len(values):,} values; at most {_MAX_AXIS:,} per key")
    return values


def check_axes(axes: list[Axis]) -> None:
    """At most two swept keys (a heatmap has two axes), each given once."""
    keys = [a.key for a in axes]
    for k in keys:
        if keys.count(k) > 1:
            raise ConfigError(f"--grid {k} is given twice; give all its values in one --grid")
    if len(axes) > 2:
        raise ConfigError(f"{len(axes)} swept keys ({', '.join(keys)}): a sweep draws a heatmap over at most two; "
                          "fix the others with --set and run one sweep per value")
    if SIGMA_W2 in keys and "model.init_gain" in keys:
        raise ConfigError(f"--grid {SIGMA_W2} sets model.init_gain; sweep one or the other")


def cells(axes: list[Axis], seeds: list[int]) -> list[Cell]:
    """The cross product of the axes' values, times the seeds (seed fastest)."""
    return [Cell(tuple(combo), seed) for combo in itertools.product(*(a.values for a in axes)) for seed in seeds]


def cell_overrides(base: Config, axes: list[Axis], cell: Cell) -> dict:
    """The config overrides of one cell (sigma_w2 turned into model.init_gain)."""
    overrides = {a.key: v for a, v in zip(axes, cell.values) if a.key != SIGMA_W2}
    overrides["train.seed"] = cell.seed
    for a, v in zip(axes, cell.values):
        if a.key == SIGMA_W2:
            cfg = base.with_overrides(overrides)
            overrides["model.init_gain"] = gain_for_sigma_w2(cfg, v)
    return overrides


def gain_for_sigma_w2(cfg: Config, sigma_w2: float) -> float:
    """model.init_gain that gives the hidden layers sigma_w^2 = n Var(W) under cfg's init scheme."""
    from gradtui.theory import weight_var

    m = cfg.model
    n = m.width
    base = n * weight_var(m.init, n, n, m.init_std, 1.0)
    return math.sqrt(sigma_w2 / base)


def cell_config(base: Config, axes: list[Axis], cell: Cell) -> Config:
    """The validated config of one cell; a ConfigError names the cell."""
    try:
        return base.with_overrides(cell_overrides(base, axes, cell))
    except ConfigError as err:
        raise ConfigError(f"cell {cell.ident(axes)}: {err}") from None
