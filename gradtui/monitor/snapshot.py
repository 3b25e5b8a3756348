"""The snapshot: everything a reader (the interface, `gradtui run`) needs, as plain Python values.

The worker publishes a new Snapshot by replacing one reference (atomic in CPython),
so readers never lock and never see a half-written state. No NumPy arrays here:
floats, ints, strings and tuples only, so Textual reactives compare them safely.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STATUSES = ("compiling", "waiting", "running", "paused", "finished", "stopped", "error")  # waiting: a followed record not there yet


@dataclass(frozen=True)
class LayerSeries:
    """History of one per-layer statistic: ``values[i][l]`` at ``steps[i]`` for layer l."""

    steps: tuple = ()
    values: tuple = ()


@dataclass(frozen=True)
class HistoryView:
    """Decimated, bounded history of the current run (at most ``capacity`` points per series).

    The history covers the current run: a restart with fresh weights starts a new one
    (the profile before it stays in ``Snapshot.before``); an in-place change adds a marker.
    """

    steps: tuple = ()  # step numbers of the points below
    loss: tuple = ()
    grad_norm_total: tuple = ()
    clipped: tuple = ()  # whether the gradient was clipped at each point
    eval_steps: tuple = ()
    eval_loss: tuple = ()
    eval_accuracy: tuple = ()
    layers: dict = field(default_factory=dict)  # stat name -> tuple of per-point tuples (one value per layer)
    markers: tuple = ()  # (step, text) of changes and restarts
    stride: int = 1  # steps between stored points at the moment (doubles each time the buffers fill)


@dataclass(frozen=True)
class Snapshot:
    """The state of a session at one moment."""

    status: str = "compiling"
    step: int = 0
    steps_per_second: float = 0.0
    config: object = None  # the current gradtui.Config (immutable), or None for a record of a model gradtui did not build
    layers: tuple = ()  # the layer table: gradtui.engine.record.Layer (name, kind, activation ...), input to output
    layer_names: tuple = ()
    latest: dict = field(default_factory=dict)  # the latest step as plain numbers (monitor.step_values: floats, tuples)
    latest_finite: dict = field(default_factory=dict)  # the latest step whose values are finite (is `latest` unless that step went non-finite)
    history: HistoryView = HistoryView()
    before: dict | None = None  # just before the last change: "step", "run", "change", "layer_names", "loss", every per-layer statistic, "time_delta_norm"
    alerts: tuple = ()  # active gradtui.diagnosis.alert.Alert, worst first
    evaluation: dict = field(default_factory=dict)  # latest {"loss", "accuracy"} on the held-out split
    message: str = ""  # last notice for the user (change applied, restart, error text)
    version: int = 0  # increases with every publish; readers skip redraws when unchanged
    pause_reason: str = ""  # "" | "user" | "nonfinite" (why status is "paused")
    run: int = 0  # fresh initialisations so far (0 for the first run; +1 per restart)
    record_path: str = ""  # the JSON Lines record being written, if any
    record_error: str = ""  # set when writing the record failed (training went on, recording stopped)
    source: str = "live"  # "live" | "replay" | "follow" (gradtui.sources.protocol.Capabilities.kind)
    position: str = ""  # where a replay or a followed record is: "step 1,200 / 3,000"
    tier: str = ""  # "reference" (NumPy, while the kernels compile) or "kernels"; "" before the first Experiment
    raised: tuple = ()  # (step, Alert) of every alert raised in this session, oldest first (bounded)
    baseline_loss: float | None = None  # the task's loss for a constant guess (Dataset.baseline_loss), if known
    prediction: dict | None = None  # the latest "prediction" event (Monitor.note_prediction): applies, attenuation, reason, summary
