"""Diagnosis: each rule fires on a scenario built for it and stays silent on a healthy one.

Fast unit tests on synthetic StepRecords first, then end-to-end scenarios on the engine
(small widths, float32) as issue 5 lists them.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from gradtui.config import build_config, load_config
from gradtui.diagnosis import Alert, Diagnoser, Hysteresis, Remedy, Trends, remedies_for, rules
from gradtui.engine.record import StepRecord
from gradtui.ui.keys import remedy_keys

NAMES = [f"hidden.{i}" for i in range(5)] + ["output"]


def record(step=1, *, loss=1.0, total=1.0, delta=None, grad=None, weight=None, update=None,
           dead=None, sat=None, nonfinite=False, layer=None, tdn=None) -> StepRecord:
    n = len(NAMES)
    ones = np.ones(n)
    return StepRecord(
        step=step, loss=loss, grad_norm_total=total, clipped=False,
        grad_norm=ones.copy() if grad is None else np.asarray(grad, float),
        delta_norm=ones.copy() if delta is None else np.asarray(delta, float),
        weight_norm=ones.copy() if weight is None else np.asarray(weight, float),
        update_ratio=np.full(n, 1e-2) if update is None else np.asarray(update, float),
        act_mean=np.zeros(n), act_std=ones.copy(),
        dead_fraction=np.zeros(n) if dead is None else np.asarray(dead, float),
        saturation=np.zeros(n) if sat is None else np.asarray(sat, float),
        nonfinite=nonfinite, nonfinite_layer=layer,
        time_delta_norm=None if tdn is None else np.asarray(tdn, float),
    )


def cfg_with(**over):
    base = {"model.depth": 5, "model.width": 16, "model.activation": "sigmoid", "model.init": "normal", "model.init_std": 0.01}
    base.update(over)
    return load_config("vanishing-sigmoid").with_overrides(base)


VANISH = dict(delta=[1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0], grad=[1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0])


# -- hysteresis ------------------------------------------------------------------------------
def test_hysteresis_rises_after_rise_steps_and_clears_after_clear_steps():
    h = Hysteresis(rise_steps=3, clear_steps=4)
    assert [h.update("k", True) for _ in range(3)] == [None, None, "raised"]
    assert h.is_active("k")
    assert [h.update("k", False) for _ in range(4)] == [None, None, None, "cleared"]


def test_hysteresis_flipping_condition_raises_nothing():
    h = Hysteresis(rise_steps=2, clear_steps=2)
    assert all(h.update("k", i % 2 == 0) is None for i in range(1000))
    assert not h.active()


def test_diagnoser_flipping_condition_raises_nothing():
    d = Diagnoser(cfg_with(), NAMES)
    for s in range(1, 1001):
        rec = record(s, **VANISH) if s % 2 else record(s)
        assert d.observe(rec) == []
    assert d.active() == ()


def test_flicker_does_not_clear_an_active_alert():
    d = Diagnoser(cfg_with(), NAMES)
    for s in range(1, 30):
        d.observe(record(s, **VANISH))
    assert [a.kind for a in d.active()] == ["vanishing"]
    for s in range(30, 300):
        assert d.observe(record(s, **VANISH) if s % 2 else record(s)) == []


# -- rules on synthetic records --------------------------------------------------------------
def run(d, recs):
    events = []
    for rec in recs:
        events += d.observe(rec)
    return events


def test_vanishing_ratio_fires_and_names_first_and_last_hidden_layer():
    cfg = cfg_with()
    d = Diagnoser(cfg, NAMES)
    events = run(d, [record(s, **VANISH) for s in range(1, 21)])
    assert [(e, a.kind) for e, a in events] == [("raised", "vanishing")]
    alert = events[0][1]
    assert alert.step == cfg.alerts.rise_steps and alert.severity == "warning"
    assert alert.layers == ("hidden.0", "hidden.4")
    assert alert.figure == pytest.approx(1e-5)
    assert alert.message.startswith("hidden.0 gets 1e-05 of the gradient reaching hidden.4")
    assert "sigmoid" in alert.message and "theory predicted" in alert.message
    assert alert.predicted is not None and alert.predicted < 1e-3
    assert set(remedy_keys(alert.remedies)) >= {"a", "i", "b", "r", "["}
    # healthy, it clears after clear_steps
    events = run(d, [record(s) for s in range(21, 21 + cfg.alerts.clear_steps)])
    assert [(e, a.kind) for e, a in events] == [("cleared", "vanishing")]


def test_vanishing_update_ratio_sign():
    a = cfg_with().alerts
    tr = Trends(a.window)
    rec = record(update=[1e-8, 1e-8, 1e-3, 1e-3, 1e-3, 1e-2])
    tr.push(rec.loss, rec.grad_norm_total, rec.weight_norm)
    f = rules.vanishing(rec, tr, a, NAMES)
    assert f.sign == "update" and f.figure == pytest.approx(1e-8)
    assert rules.vanishing(record(update=[1e-8] * 5 + [1e-5]), tr, a, NAMES) is None  # output not healthy either


def test_vanishing_weights_shrinking_toward_zero_sign():
    a = cfg_with().alerts
    tr = Trends(a.window)
    tr.push(1.0, 1.0, np.ones(6))
    f = rules.vanishing(record(weight=[0.3, 1, 1, 1, 1, 1.2]), tr, a, NAMES)
    assert f.sign == "weights" and f.figure == pytest.approx(0.3)
    assert "shrank to 30%" in rules.message(f, cfg_with())


def test_flat_loss_loosens_vanishing_threshold_tenfold():
    a = cfg_with().alerts
    mild = dict(delta=[5e-3, 1, 1, 1, 1, 1], grad=[5e-3, 1, 1, 1, 1, 1])  # 5e-3: above 1e-3, below 1e-2
    tr = Trends(a.window)
    for s in range(a.window):
        tr.push(1.0, 1.0, np.ones(6))  # the loss has not moved
    assert rules.vanishing(record(**mild), tr, a, NAMES).info["flat"]
    tr = Trends(a.window)
    for s in range(a.window):
        tr.push(1.0 - 0.5 * s / a.window, 1.0, np.ones(6))
    assert rules.vanishing(record(**mild), tr, a, NAMES) is None


def test_exploding_norm_growth_weights_and_oscillation():
    a = cfg_with().alerts
    tr = Trends(a.window)
    assert rules.exploding(record(total=2e3), tr, a).sign == "norm"
    for s in range(40):
        tr.push(1.0, 1.0, np.ones(6))
    for s in range(5):
        tr.push(1.0, 20.0, np.ones(6))
    f = rules.exploding(record(total=20.0), tr, a)
    assert f.sign == "growth" and f.figure == pytest.approx(20.0)
    tr = Trends(a.window)
    for s in range(a.window):
        tr.push(1.0, 1.0, np.ones(6) * (1.0 + 3.0 * s / a.window))
    f = rules.exploding(record(), tr, a)
    assert f.sign == "weight_growth" and f.figure > a.weight_growth
    tr = Trends(a.window)
    for s in range(a.window):
        tr.push(1.0 if (s // 10) % 2 else 3.0, 1.0, np.ones(6))
    f = rules.exploding(record(), tr, a)
    assert f.sign == "oscillation" and "swings between 1 and 3" in rules.message(f, cfg_with())
    tr = Trends(a.window)
    for s in range(2 * a.window):  # the same swings 100x below the starting loss: mini-batch noise
        tr.push(1.0 if s < 10 else (0.004 if (s // 10) % 2 else 0.008), 1.0, np.ones(6))
    assert tr.loss_up >= 1.0 + a.loss_swing and rules.exploding(record(), tr, a) is None
    tr = Trends(a.window)
    for s in range(a.window):  # a decreasing, noisy loss and a steady gradient are fine
        tr.push(2.0 - s / a.window + 0.05 * (s % 2), 1.0 + 0.5 * (s % 3), np.ones(6))
    assert rules.exploding(record(), tr, a) is None


def test_nonfinite_rises_at_once_and_is_critical():
    d = Diagnoser(cfg_with(), NAMES)
    run(d, [record(s) for s in range(1, 5)])
    events = d.observe(record(5, loss=float("nan"), total=float("nan"), nonfinite=True, layer="hidden.2"))
    assert [(e, a.kind, a.severity, a.layers) for e, a in events] == [("raised", "nonfinite", "critical", ("hidden.2",))]
    assert "hidden.2" in events[0][1].message
    assert set(remedy_keys(events[0][1].remedies)) >= {"c", "-"}


def test_dead_and_saturation_name_worst_layer_first():
    a = cfg_with().alerts
    f = rules.dead(record(dead=[0.1, 0.5, 0.9, 0, 0, 0]), a, NAMES)
    assert f.layers == ("hidden.2", "hidden.1") and f.figure == pytest.approx(0.9)
    assert rules.dead(record(dead=[0.1] * 5 + [1.0]), a, NAMES) is None  # the output layer is not a hidden layer
    f = rules.saturation(record(sat=[0.8, 0, 0, 0, 0, 0]), a, NAMES)
    assert "80% of hidden.0's tanh" in rules.message(f, cfg_with(**{"model.activation": "tanh"}))


def test_vanishing_time_rule():
    a = cfg_with().alerts
    f = rules.vanishing_time(record(tdn=np.geomspace(1e-6, 1.0, 50)), a)
    assert f.layers == ("t=1", "t=50") and f.figure == pytest.approx(1e-6)
    assert rules.vanishing_time(record(tdn=np.geomspace(0.1, 1.0, 50)), a) is None
    assert "factor of about 0.75 per step" in rules.message(f, cfg_with())
    underflowed = np.concatenate([np.zeros(30), np.geomspace(1e-19, 1.0, 20)])  # 0.1 per step, then 0
    f = rules.vanishing_time(record(tdn=underflowed), a)
    assert f.figure == 0.0 and f.info["reached"] == 31 and f.info["per_step"] == pytest.approx(0.1)
    assert rules.message(f, cfg_with()).startswith("No gradient reaches t=1 to t=30: on the way back from t=50")


def test_active_is_worst_first_and_alerts_serialise():
    d = Diagnoser(cfg_with(**{"model.activation": "relu", "model.init": "he"}), NAMES)
    run(d, [record(s, total=2e3, dead=[0.9, 0, 0, 0, 0, 0]) for s in range(1, 25)])
    d.observe(record(25, nonfinite=True, layer="loss"))
    kinds = [a.kind for a in d.active()]
    assert kinds == ["nonfinite", "exploding", "dead"]
    for alert in d.active():
        assert isinstance(alert, Alert) and alert.to_dict()["kind"] == alert.kind


# -- remedies --------------------------------------------------------------------------------
def keys(kind, cfg):
    """The interface's key of each remedy (the diagnosis knows no keys)."""
    return list(remedy_keys(remedies_for(kind, cfg)))


def by_key(remedies) -> dict:
    return {k: dict(r.change) for k, r in zip(remedy_keys(remedies), remedies)}


def test_remedies_in_effect_are_not_suggested():
    cfg = cfg_with(**{"model.activation": "relu", "model.init": "he", "model.batchnorm": True, "model.residual": True})
    assert {"a", "i", "b", "r"}.isdisjoint(keys("vanishing", cfg))
    assert "c" not in keys("exploding", cfg.with_overrides({"train.clip": "norm"}))
    assert "c" in keys("exploding", cfg)


def test_remedy_changes_match_the_interface_contract():
    sig = cfg_with()
    vanishing = by_key(remedies_for("vanishing", sig))
    assert vanishing["a"] == {"model.activation": "relu"}
    assert vanishing["i"]["model.init"] == "xavier"
    assert vanishing["b"] == {"model.batchnorm": True} and vanishing["r"] == {"model.residual": True}
    assert vanishing["["] == {"model.depth": 4}
    relu = cfg_with(**{"model.activation": "relu", "model.init": "normal", "model.init_std": 1.0, "train.lr": 0.2})
    ex = by_key(remedies_for("exploding", relu))
    assert ex["c"] == {"train.clip": "norm"} and ex["-"] == {"train.lr": 0.1} and ex["i"]["model.init"] == "he"
    dead = by_key(remedies_for("dead", relu))
    assert dead["a"] == {"model.activation": "leaky_relu"}
    labels = " ".join(r.label for r in remedies_for("dead", relu))
    assert "prelu" in labels and "elu" in labels
    sat = by_key(remedies_for("saturation", cfg_with(**{"model.activation": "tanh"})))
    assert sat["b"] == {"model.batchnorm": True} and sat["a"] == {"model.activation": "relu"}
    rnn = build_config({"model": {"kind": "rnn", "recurrent_init": "normal"}, "data": {"task": "adding"}})
    rt = remedies_for("vanishing_time", rnn)
    assert ("g", {"model.kind": "lstm"}) in [(k, dict(r.change)) for k, r in zip(remedy_keys(rt), rt)]
    assert any(k == "" and dict(r.change)["model.recurrent_init"] == "orthogonal" for k, r in zip(remedy_keys(rt), rt))
    lstm = build_config({"model": {"kind": "lstm"}, "data": {"task": "adding"}})
    assert "g" not in keys("vanishing_time", lstm)
    for kind in ("vanishing", "vanishing_time", "exploding", "nonfinite", "dead", "saturation"):
        for remedies in (remedies_for(kind, sig), remedies_for(kind, rnn)):
            assert all(isinstance(r, Remedy) and r.change for r in remedies)
            assert set(remedy_keys(remedies)) <= {"a", "i", "b", "r", "c", "g", "-", "[", ""}


def test_every_remedy_applies_cleanly_to_its_config():
    cfgs = [cfg_with(), cfg_with(**{"model.activation": "relu", "model.bias_init": -3.0}),
            build_config({"model": {"kind": "rnn", "activation": "tanh"}, "data": {"task": "adding"}}),
            build_config({"model": {"kind": "lstm", "forget_bias": 0.5, "recurrent_gain": 1.5}, "data": {"task": "adding"}})]
    for cfg in cfgs:
        for kind in ("vanishing", "vanishing_time", "exploding", "nonfinite", "dead", "saturation"):
            for r in remedies_for(kind, cfg):
                cfg.with_overrides(dict(r.change))  # raises ConfigError if the change is not allowed


def test_observe_is_cheap():
    d = Diagnoser(cfg_with(**{"model.depth": 20}), [f"hidden.{i}" for i in range(20)] + ["output"])
    rng = np.random.default_rng(0)
    n = 21
    recs = [StepRecord(s, 1.0, 1.0, False, rng.random(n), rng.random(n), np.ones(n), np.full(n, 1e-3), np.zeros(n),
                       np.ones(n), np.zeros(n), np.zeros(n)) for s in range(1, 2001)]
    for rec in recs[:200]:
        d.observe(rec)
    t = time.perf_counter()
    for rec in recs[200:]:
        d.observe(rec)
    per_step = (time.perf_counter() - t) / 1800
    assert per_step < 200e-6  # ~10 us measured unloaded; generous for a loaded CI box


# -- scenarios on the engine -----------------------------------------------------------------
def train(cfg, steps, stop_on_nonfinite=False):
    from gradtui.engine.experiment import Experiment

    exp = Experiment(cfg)
    d = Diagnoser(cfg, exp.layer_names)
    events = []
    for _ in range(steps):
        rec = exp.step()
        events += [(rec.step, e, a) for e, a in d.observe(rec)]
        if stop_on_nonfinite and rec.nonfinite:
            break
    return exp, d, events


def test_deep_sigmoid_small_init_raises_vanishing():
    cfg = load_config("vanishing-sigmoid").with_overrides({"model.width": 32})
    _, _, events = train(cfg, 300)
    raised = [(s, a) for s, e, a in events if e == "raised"]
    assert raised and raised[0][1].kind == "vanishing" and raised[0][0] <= 300
    assert raised[0][1].layers == ("hidden.0", "hidden.19")


def test_relu_he_raises_nothing_over_1000_steps():
    cfg = load_config("vanishing-sigmoid").with_overrides({"model.width": 32, "model.activation": "relu", "model.init": "he"})
    _, d, events = train(cfg, 1000)
    assert events == [], [a.message for _, _, a in events]


def test_large_init_high_lr_raises_exploding_then_nonfinite_with_finite_params():
    cfg = load_config("vanishing-sigmoid").with_overrides(
        {"model.width": 32, "model.activation": "relu", "model.init": "he", "model.init_gain": 1.3, "train.lr": 0.01})
    exp, d, events = train(cfg, 200, stop_on_nonfinite=True)
    kinds = [a.kind for _, e, a in events if e == "raised"]
    assert kinds[:2] == ["exploding", "nonfinite"], kinds
    nf = [a for _, e, a in events if a.kind == "nonfinite"][0]
    assert nf.layers[0] in exp.layer_names and nf.layers[0] in nf.message
    assert all(np.isfinite(v).all() for v in exp.params().values())


def test_relu_with_large_negative_bias_raises_dead_units():
    cfg = load_config("vanishing-sigmoid").with_overrides(
        {"model.width": 32, "model.depth": 4, "model.activation": "relu", "model.init": "he", "model.bias_init": -3.0})
    _, _, events = train(cfg, 100)
    dead = [a for _, e, a in events if e == "raised" and a.kind == "dead"]
    assert dead and dead[0].figure > 0.9
    assert set(remedy_keys(dead[0].remedies)) >= {"a", "-"}


def adding_cfg(kind):
    return build_config({
        "model": {"kind": kind, "depth": 1, "width": 32, "activation": "tanh"},
        "data": {"task": "adding", "seq_len": 50, "samples": 1024},
        "train": {"optimizer": "sgd", "lr": 0.05, "batch_size": 32},
    })


def test_vanilla_rnn_on_long_adding_raises_vanishing_through_time():
    _, _, events = train(adding_cfg("rnn"), 150)
    vt = [a for _, e, a in events if e == "raised" and a.kind == "vanishing_time"]
    assert vt, [a.message for _, _, a in events]
    assert vt[0].layers == ("t=1", "t=50") and vt[0].figure < 1e-3
    assert "g" in remedy_keys(vt[0].remedies)


def test_lstm_on_long_adding_does_not_raise_vanishing_through_time():
    _, _, events = train(adding_cfg("lstm"), 150)
    assert not [a for _, e, a in events if a.kind == "vanishing_time"], [a.message for _, _, a in events]


# -- one definition for row marks and alerts; the best remedies; each preset's own remedy ----------
def test_row_marks_and_the_vanishing_rule_share_one_definition():
    """The rule fires on a record exactly when the first hidden layer is marked vanishing in both
    the dL/dW and the dL/dz profile (the bars' marks), and never on the output layer's scale."""
    from gradtui.diagnosis.health import marks

    cfg = cfg_with(**{"model.depth": 5})
    a = cfg.alerts
    names = [f"hidden.{i}" for i in range(5)] + ["output"]
    rng = np.random.default_rng(1)
    agreed = 0
    for _ in range(200):
        g = 10.0 ** rng.uniform(-8, 1, 6)
        d = g * 10.0 ** rng.uniform(-1, 1, 6)
        rec = StepRecord(100, 1.0, 1.0, False, g, d, np.ones(6), np.full(6, 1e-3), np.zeros(6), np.zeros(6),
                         np.zeros(6), np.zeros(6))
        fired = rules.vanishing(rec, Trends(a.window), a, names)
        fired = fired is not None and fired.sign == "ratio"
        by_marks = (marks(list(g), a.vanishing_ratio, a.exploding_norm)[0] == "vanishing"
                    and marks(list(d), a.vanishing_ratio, a.exploding_norm)[0] == "vanishing")
        assert fired == by_marks
        agreed += fired
    assert 20 < agreed < 180  # both outcomes were exercised
    big_output = [1e-3] * 5 + [10.0]  # as after b: the output layer's gradient 1e4 x the hidden layers'
    assert marks(big_output, a.vanishing_ratio, a.exploding_norm)[:-1] == ["healthy"] * 5


def test_best_remedies_are_one_or_two_with_each_alerts_best_first():
    from gradtui.diagnosis.remedies import best_remedies

    def lead(remedies):  # the setting each remedy changes first: one remedy per setting
        return [r.change[0][0] for r in remedies]

    cfg = cfg_with()  # deep sigmoid, tiny weights
    vanishing = Alert("vanishing", "warning", "m", (), remedies_for("vanishing", cfg))
    saturation = Alert("saturation", "warning", "m", (), remedies_for("saturation", cfg))
    assert lead(best_remedies((vanishing,))) == ["model.batchnorm", "model.activation"]
    assert lead(best_remedies((vanishing, saturation))) == ["model.batchnorm", "model.activation"]
    dead = Alert("dead", "warning", "m", (), remedies_for("dead", cfg_with(**{"model.activation": "relu"})))
    assert [dict(r.change) for r in best_remedies((dead, vanishing))] == [
        {"model.activation": "leaky_relu"}, {"model.batchnorm": True}]  # each alert's best first
    assert best_remedies(()) == ()
    # only the remedies the caller can apply count (the interface: those a key applies)
    assert lead(best_remedies((vanishing,), applies=lambda r: r.change[0][0] != "model.batchnorm")) == [
        "model.activation", "model.init"]
    assert len(best_remedies((vanishing,), most=1)) == 1


def test_the_interface_marks_the_best_remedies_by_their_keys():
    from gradtui.ui import keys

    cfg = cfg_with()
    vanishing = Alert("vanishing", "warning", "m", (), remedies_for("vanishing", cfg))
    saturation = Alert("saturation", "warning", "m", (), remedies_for("saturation", cfg))
    assert keys.try_keys((vanishing,)) == {"b", "a"}
    assert keys.try_keys((vanishing, saturation)) == {"b", "a"}
    assert all(r.change[0][0] in keys.REMEDY_KEYS for r in keys.best_remedies((vanishing, saturation)))
    assert keys.try_keys(()) == set()


def test_each_presets_own_remedy_is_among_its_alerts_suggestions():
    from test_preset_promises import PROMISES

    from gradtui.config import load_config
    from gradtui.ui.keys import try_keys

    for promise in PROMISES:
        cfg = load_config(promise.preset)
        offered = remedy_keys(remedies_for(promise.alert, cfg))
        assert promise.keys[0] in offered, (promise.preset, offered)
    ortho = load_config("orthogonal-deep-linear")
    first = remedies_for("nonfinite", ortho)[0]
    assert remedy_keys((first,)) == ("i",) and dict(first.change)["model.init"] == "orthogonal"
    for preset, key in (("residual-rescue", "r"), ("exploding-init", "i"), ("orthogonal-deep-linear", "i")):
        cfg = load_config(preset)
        kind = "vanishing" if preset == "residual-rescue" else "nonfinite"
        alert = Alert(kind, "warning", "m", (), remedies_for(kind, cfg))
        assert key in try_keys((alert,)), preset  # and it is marked "◀ try"
