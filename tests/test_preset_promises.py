"""Every preset's promise, tested: the alert its description promises rises within the
steps it states, and the keys it names, applied through the interface's change path,
remove that alert and let the loss fall.

The keys go through the same functions the interface uses: ``gradtui.ui.keys.change_for``
turns a key press (and the active alerts, whose remedies a key applies first) into
config overrides, and :func:`apply_change` mirrors ``Session._apply_change``: the new
config from ``Config.with_overrides``, then ``Experiment.reconfigure`` when
``restart_keys`` is empty (weights carry over) or a fresh ``Experiment`` otherwise, and
a fresh ``Diagnoser`` either way, as the session does. The last test drives a real
:class:`~gradtui.session.Session` through ``Session.apply`` for the default preset.

Step counts are the smallest that were robust when the presets were written; every run
is float32 (the presets' default number type).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pytest

from gradtui.config import load_config
from gradtui.config.changes import restart_keys
from gradtui.diagnosis import Diagnoser
from gradtui.engine import Experiment

from gradtui.session import Session
from gradtui.ui import keys as keys_mod


class Run:
    """An Experiment with its Diagnoser, stepped like the session worker steps it."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.exp = Experiment(cfg)
        self.diag = Diagnoser(cfg, self.exp.layer_names)
        self.raised: list[tuple[int, str]] = []
        self.losses: list[float] = []
        self.nonfinite_steps = 0

    def step(self):
        rec = self.exp.step()
        if rec.nonfinite:
            self.nonfinite_steps += 1
        else:
            self.losses.append(float(rec.loss))
        for what, alert in self.diag.observe(rec):
            if what == "raised":
                self.raised.append((rec.step, alert.kind))
        return rec

    def until_raised(self, kind: str, within: int) -> int:
        """Step until an alert of ``kind`` rises; its step (fails after ``within`` steps)."""
        for _ in range(within):
            rec = self.step()
            if any(k == kind for _, k in self.raised):
                return rec.step
            if rec.nonfinite and kind != "nonfinite":
                break
        pytest.fail(f"{self.cfg.name}: no {kind} alert within {within} steps (raised: {self.raised})")

    def run(self, n: int) -> None:
        for _ in range(n):
            self.step()

    def press(self, key: str) -> dict:
        """One key press, as the interface makes it: change_for + the session's change path.
        ``n`` (new run) is Session.restart(next_seed=True): fresh weights from the next seed."""
        if key == "n":
            change = {"train.seed": self.cfg.train.seed + 1}
            self.apply_change(change)
            return change
        change = keys_mod.change_for(key, self.cfg, self.diag.active())
        assert change, f"{self.cfg.name}: key {key!r} does nothing"
        self.apply_change(change)
        return change

    def apply_change(self, overrides: dict) -> None:
        """What Session._apply_change does with a change: carry over or restart."""
        old = self.cfg
        new = old.with_overrides(overrides)
        if restart_keys(old, new):
            self.exp = Experiment(new)
        else:
            self.exp.reconfigure(new)
        self.cfg = new
        self.diag = Diagnoser(new, self.exp.layer_names)
        self.raised, self.losses, self.nonfinite_steps = [], [], 0

    def active_kinds(self) -> set[str]:
        return {a.kind for a in self.diag.active()}


def loss_fell(losses: list[float], k: int = 30, factor: float = 0.99) -> bool:
    """The mean of the last k losses is below ``factor`` times the mean of the first k."""
    assert len(losses) >= 2 * k
    first, last = float(np.mean(losses[:k])), float(np.mean(losses[-k:]))
    return math.isfinite(last) and last < factor * first


@dataclass(frozen=True)
class Promise:
    preset: str
    alert: str  # the alert the description promises
    within: int  # ... within this many steps
    keys: tuple  # the keys the description names, pressed in order
    after: int  # steps run after the last key
    between: int = 0  # steps between two key presses (the user watching)
    gone: tuple = ()  # further alert kinds that must not rise after the fix
    slow: bool = False
    learns: bool = True  # the loss falls after the fix (the description promises it)

    def __str__(self):
        return f"{self.preset}:{''.join(self.keys)}"


PROMISES = [
    Promise("vanishing-sigmoid", "vanishing", 40, ("b",), 300),
    Promise("vanishing-sigmoid", "vanishing", 40, ("a", "i"), 300, between=30, gone=("dead",)),
    Promise("vanishing-tanh-standard", "vanishing", 40, ("i",), 300),
    Promise("relu-xavier-vs-he", "vanishing", 200, ("i",), 300, slow=True),
    Promise("dying-relu", "dead", 40, ("a", "a"), 200, between=20),
    Promise("exploding-init", "nonfinite", 5, ("i",), 200, gone=("exploding",)),
    Promise("residual-rescue", "vanishing", 40, ("r",), 300, slow=True),
    Promise("shallow-vs-deep", "vanishing", 40, ("[", "["), 200, between=20),
    Promise("orthogonal-deep-linear", "nonfinite", 10, ("i",), 200, gone=("exploding",), slow=True),
    Promise("cnn-vanishing", "vanishing", 40, ("r",), 300),
    Promise("cnn-vanishing", "vanishing", 40, ("b",), 300, slow=True),
    Promise("resnet-rescue", "dead", 40, ("r",), 300, slow=True),
    # i restarts a plain 20-layer ReLU CNN from He init: no more overflow, but such a net sits
    # on the ln 10 plateau for hundreds of steps (the degradation resnet-rescue shows), and
    # whether it leaves it by step 200 depends on float32 rounding (the kernel's product order).
    Promise("cnn-exploding", "nonfinite", 10, ("i",), 200, slow=True, learns=False),
]


def _param(p: Promise):
    return pytest.param(p, id=str(p), marks=[pytest.mark.slow] if p.slow else [])


@pytest.mark.parametrize("promise", [_param(p) for p in PROMISES])
def test_preset_promise(promise: Promise):
    run = Run(load_config(promise.preset))
    run.until_raised(promise.alert, promise.within)
    for i, key in enumerate(promise.keys):
        if i:
            run.run(promise.between)
        run.press(key)
    run.run(promise.after)
    banned = (promise.alert,) + promise.gone
    late = [(s, k) for s, k in run.raised if k in banned]
    assert not late, f"{promise}: {late} rose again after the fix"
    assert not run.active_kinds() & set(banned)
    assert run.nonfinite_steps == 0
    assert loss_fell(run.losses) or not promise.learns, f"{promise}: the loss did not fall ({run.losses[:3]} ... {run.losses[-3:]})"


def test_batchnorm_rescue_is_healthy_until_b_switches_it_off():
    run = Run(load_config("batchnorm-rescue"))
    run.run(200)
    assert not [k for _, k in run.raised if k == "vanishing"]
    assert loss_fell(run.losses)
    assert run.press("b") == {"model.batchnorm": False}
    run.until_raised("vanishing", 40)


def test_rnn_vanishing_adding_gru_fills_in_the_time_profile():
    """g g (rnn -> lstm -> gru): the GRU's update gate carries the gradient back to t = 1."""
    run = Run(load_config("rnn-vanishing-adding"))
    run.until_raised("vanishing_time", 40)
    run.press("g")
    assert run.cfg.model.kind == "lstm"
    run.press("g")
    assert run.cfg.model.kind == "gru"
    run.run(400)
    assert "vanishing_time" not in run.active_kinds()
    assert float(np.mean(run.losses[-30:])) < 0.1  # well below the 1/6 of always answering 1
    assert loss_fell(run.losses, factor=0.7)


@pytest.mark.slow
def test_rnn_vanishing_adding_lstm_learns_and_the_alert_clears():
    """g (rnn -> lstm): the LSTM sits on the 1/6 plateau for a few hundred steps, then learns."""
    run = Run(load_config("rnn-vanishing-adding"))
    run.until_raised("vanishing_time", 40)
    run.press("g")
    assert run.cfg.model.kind == "lstm"
    run.run(1000)
    assert "vanishing_time" not in run.active_kinds()
    assert float(np.mean(run.losses[-30:])) < 0.05


@pytest.mark.parametrize("preset,key,change", [
    ("exploding-init", "b", {"model.batchnorm": True}),
    ("exploding-init", "c", {"train.clip": "norm"}),
    ("rnn-exploding", "c", {"train.clip": "norm"}),
    ("cnn-exploding", "b", {"model.batchnorm": True}),
    ("cnn-exploding", "c", {"train.clip": "norm"}),
])
def test_remedy_then_space_after_an_explosion(preset, key, change):
    """The descriptions' promise, through a real Session: at the non-finite pause press the
    remedy, then space; training goes back to the last healthy weights and trains."""
    cfg = load_config(preset)
    assert keys_mod.change_for(key, cfg, ()) == change
    session = Session(cfg).start()
    try:
        assert session.wait(120)
        snap = session.snapshot()
        assert snap.pause_reason == "nonfinite" and snap.step <= 6, snap.message
        session.apply(change)
        session.resume()
        assert session.wait_commands(10)
        paused_at = snap.step
        deadline = time.monotonic() + 120
        while session.snapshot().step < paused_at + 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        snap = session.snapshot()
        assert snap.step >= paused_at + 300 and snap.pause_reason != "nonfinite", snap.message
        assert "last healthy checkpoint" in " ".join(text for _, text in snap.history.markers) or \
            any("weights back to step" in text for _, text in snap.history.markers)
        losses = [loss for step, loss in zip(snap.history.steps, snap.history.loss) if step > paused_at]
        assert all(math.isfinite(loss) for loss in losses)
        assert loss_fell(losses, factor=0.95), f"{preset}:{key}: {losses[:3]} ... {losses[-3:]}"
    finally:
        session.stop(1.0)


def test_irnn_adding_learns_without_vanishing_through_time():
    run = Run(load_config("irnn-adding"))
    run.run(900)
    assert "vanishing_time" not in {k for _, k in run.raised}
    assert run.nonfinite_steps == 0
    assert float(np.mean(run.losses[-30:])) < 0.05  # the 1/6 plateau is far behind


def test_copy_memory_rnn_sits_at_the_baseline_until_g_g():
    cfg = load_config("copy-memory")
    baseline = 10 * math.log(8) / (cfg.data.seq_len + 20)
    run = Run(cfg)
    run.until_raised("vanishing_time", 40)
    run.run(200)
    assert abs(float(np.mean(run.losses[-30:])) - baseline) < 0.02 * baseline
    run.press("g")
    run.press("g")
    assert run.cfg.model.kind == "gru"
    run.run(400)
    assert "vanishing_time" not in run.active_kinds()
    assert float(np.mean(run.losses[-30:])) < 0.95 * baseline


@pytest.mark.slow
def test_lstm_adding_learns_within_1000_steps():
    run = Run(load_config("lstm-adding"))
    run.run(1000)
    assert run.exp.evaluate()["loss"] < 0.01
    assert "vanishing_time" not in run.active_kinds()


def test_gru_adding_learns_within_500_steps():
    run = Run(load_config("gru-adding"))
    run.run(500)
    assert run.exp.evaluate()["loss"] < 0.001
    assert "vanishing_time" not in run.active_kinds()


@pytest.mark.slow
def test_default_preset_through_a_real_session():
    """The default preset end to end through Session.apply, the interface's one change path:
    the vanishing alert rises, b (the key's change from change_for and the active alerts)
    is applied in place, and the alert does not come back while the loss falls."""
    from gradtui.session import Session

    s = Session(load_config("vanishing-sigmoid"), max_steps=40, history_capacity=4000)
    s.start()
    try:
        assert s.wait(120), "the session did not finish 40 steps"
        snap = s.snapshot()
        assert "vanishing" in {a.kind for a in snap.alerts}
        change = keys_mod.change_for("b", snap.config, snap.alerts)
        assert change == {"model.batchnorm": True}
        s.max_steps = 340
        s.apply(change)
        assert s.wait_commands(60)
        deadline_ok = False
        for _ in range(600):
            if s.wait(0.5) and s.snapshot().step >= 340:
                deadline_ok = True
                break
        assert deadline_ok, f"the session stopped at step {s.snapshot().step} ({s.snapshot().message})"
        snap = s.snapshot()
        events = s.events()
        change_step = next(e["step"] for e in events if e["event"] == "change")
        assert [e for e in events if e["event"] == "change"][0]["mode"] == "in_place"
        late = [e for e in events if e["event"] == "alert_raised" and e["step"] > change_step
                and e["alert"]["kind"] == "vanishing"]
        assert not late
        assert "vanishing" not in {a.kind for a in snap.alerts}
        losses = [l for st, l in zip(snap.history.steps, snap.history.loss) if st > change_step]
        assert loss_fell(losses)
    finally:
        s.stop(5)
