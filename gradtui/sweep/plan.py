"""A sweep plan: the base config, the axes, the seeds and steps, and the cells they make.

The named phase diagram (`--phase-diagram tanh`) is a plan with defaults: the network of
Schoenholz et al. 2017 at a size this machine trains in minutes (calibration: docs/sweeps.md).
Weights are Gaussian N(0, sigma_w^2 / fan_in) (init 'lecun' with init_gain = sigma_w), biases
N(0, sigma_b^2) with sigma_b^2 = bias_std^2 = 0.05; both are ordinary config keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gradtui.config import Config, ConfigError
from gradtui.sweep.grid import Axis, Cell, cell_config, cells, check_axes, parse_axis

PHASE_DIAGRAMS = {
    "tanh": {
        "preset": "vanishing-tanh-standard",
        "sets": {"model.activation": "tanh", "model.init": "lecun", "model.bias_std": math.sqrt(0.05),
                 "model.width": 64, "data.task": "circles", "data.samples": 1024,
                 "train.optimizer": "sgd", "train.lr": 0.01, "train.batch_size": 32, "train.eval_every": 50},
        "grid": ["model.depth=10:100:10", "sigma_w2=1:4:0.25"],
        "steps": 500,
    },
}


@dataclass
class Plan:
    base: Config
    axes: list[Axis]
    seeds: tuple
    steps: int
    threshold: float
    metric: str
    title: str

    def __post_init__(self):
        self.cells: list[Cell] = cells(self.axes, list(self.seeds))

    def config(self, cell: Cell) -> Config:
        return cell_config(self.base, self.axes, cell)

    @property
    def axis_keys(self) -> list[str]:
        return [a.key for a in self.axes]

    def check_cells(self) -> None:
        """Validate every cell's config now (a bad value is bad input, not a failed cell)."""
        for cell in self.cells:
            self.config(cell)


def make_plan(base: Config, grid: list[str], seeds: int, steps: int | None, threshold: float,
              metric: str | None, phase_diagram: str | None = None) -> Plan:
    """Build and validate a plan; raises ConfigError on bad input."""
    if phase_diagram:
        shortcut = PHASE_DIAGRAMS[phase_diagram]
        given = {parse_axis(g).key: g for g in grid}
        defaults = [given.pop(parse_axis(g).key, g) for g in shortcut["grid"]]
        grid = defaults + list(given.values())  # the shortcut's axes keep their places
        steps = steps or shortcut["steps"]
    if not grid:
        raise ConfigError("nothing to sweep: give at least one --grid KEY=SPEC (for example --grid model.depth=10:50:10)")
    axes = [parse_axis(g) for g in grid]
    check_axes(axes)
    if not 0 < threshold:
        raise ConfigError(f"--threshold {threshold:g} must be above 0 (a fraction of the constant predictor's loss)")
    from gradtui.sweep.heatmap import METRICS

    classification = base.data.task not in ("teacher", "adding", "sine")
    metric = metric or ("accuracy" if classification else "final_loss")
    if metric not in METRICS:
        raise ConfigError(f"--show {metric}: allowed: {', '.join(METRICS)}")
    if metric in ("accuracy", "best_accuracy") and not classification:
        raise ConfigError(f"--show {metric}: the {base.data.task} task has no accuracy; use final_loss or trained")
    first = base.train.seed
    keys = " x ".join(a.key for a in axes)
    title = f"gradtui sweep {base.name}: {metric} over {keys}, {steps or base.train.steps} steps"
    if phase_diagram:
        title = (f"Trainability of deep {phase_diagram} networks: {metric} after {steps} SGD steps "
                 f"(σ_b² = {base.model.bias_std ** 2:.2f})")
    plan = Plan(base, axes, tuple(range(first, first + seeds)), steps or base.train.steps, threshold, metric, title)
    plan.check_cells()
    return plan


def phase_diagram_base(name: str, load) -> Config:
    """The base config of a named phase diagram (load: name -> Config)."""
    shortcut = PHASE_DIAGRAMS[name]
    cfg = load(shortcut["preset"]).with_overrides(shortcut["sets"])
    return cfg
