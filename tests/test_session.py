"""The live session: commands from another thread, carry-over swaps, non-finite pauses, export."""

import random
import threading
import time

import numpy as np
import pytest

from gradtui import load_config, read_record
from gradtui.session import Session

from conftest import tiny, wait_for

def test_runs_to_max_steps_and_publishes_plain_values():
    s = Session(tiny(), max_steps=120).start()
    try:
        assert s.wait(60)
        snap = s.snapshot()
        assert snap.status == "finished" and snap.step == 120
        assert snap.layer_names == ("hidden.0", "hidden.1", "hidden.2", "output")
        assert snap.history.steps[0] == 1 and snap.history.steps[-1] == 120
        assert snap.history.eval_steps == (0, 50, 100)
        # numbers, not their JSON form: floats and tuples of floats
        assert isinstance(snap.latest["loss"], float) and isinstance(snap.latest["grad_norm"], tuple)
        assert all(type(v) is float for v in snap.latest["grad_norm"]) and snap.latest["time_delta_norm"] is None
        row = snap.history.layers["grad_norm"][-1]
        assert isinstance(row, tuple) and all(type(v) is float for v in row)
        assert "loss" in snap.evaluation
        v = snap.version
        assert s.snapshot().version == v  # nothing published while idle and unchanged
    finally:
        assert s.stop(1.0)
    assert s.snapshot().status == "stopped"


def test_thousand_random_commands_none_lost_or_doubled(tmp_path):
    """Commands from another thread while the session steps: applied once each, in order."""
    record = tmp_path / "run.jsonl"
    s = Session(tiny(), record_path=record, every=7, history_capacity=64).start()
    rng = random.Random(4)
    sent_lrs, restarts, paused = [], 0, False
    kinds = ["pause", "resume", "toggle", "step", "apply", "restart"]
    weights = [3, 3, 3, 4, 6, 1]

    def commander():
        nonlocal restarts, paused
        for i in range(1000):
            kind = rng.choices(kinds, weights)[0]
            if kind == "pause":
                s.pause(); paused = True
            elif kind == "resume":
                s.resume(); paused = False
            elif kind == "toggle":
                s.toggle_pause(); paused = not paused
            elif kind == "step":
                s.step_once(); paused = True  # steps when paused, pauses when running
            elif kind == "apply":
                lr = round(0.001 * (len(sent_lrs) + 1), 6)  # each value new, so each is a real change
                sent_lrs.append(lr)
                s.apply({"train.lr": lr})
            else:
                s.restart(next_seed=rng.random() < 0.5); restarts += 1
            if i % 50 == 0:
                time.sleep(0.002)  # let some steps run between bursts

    t = threading.Thread(target=commander)
    t.start()
    t.join(60)
    assert not t.is_alive()
    assert s.wait_commands(timeout=60), "commands still queued: deadlock?"
    assert s.commands_applied == 1000
    snap_ok = wait_for(lambda: s.snapshot().status in ("paused", "running"), 10)
    assert snap_ok
    assert (s.snapshot().status == "paused") == paused
    assert s.config.train.lr == sent_lrs[-1]

    t0 = time.monotonic()
    assert s.stop(1.0)
    assert time.monotonic() - t0 < 1.0

    events = s.events()
    changes = [e for e in events if e["event"] == "change"]
    assert [e["overrides"]["train.lr"] for e in changes] == sent_lrs
    assert all(e["mode"] == "in_place" for e in changes)
    assert sum(e["event"] == "restart" for e in events) == restarts
    h = s.snapshot().history
    assert list(h.steps) == sorted(set(h.steps))
    assert all(len(series) == len(h.steps) for series in h.layers.values())
    assert len(h.steps) < 64

    rec = read_record(record)  # the record tells the same story, every line whole
    assert rec.problems == []
    assert [e["overrides"]["train.lr"] for e in rec.events if e["event"] == "change"] == sent_lrs
    assert sum(e["event"] == "restart" for e in rec.events) == restarts
    assert all(st["step"] % 7 == 0 for st in rec.steps)
    assert rec.events[-1]["event"] == "end"


def _paused_session(cfg, steps=5):
    s = Session(cfg, start_paused=True).start()
    for _ in range(steps):
        s.step_once()
    assert s.wait_commands(60)
    assert wait_for(lambda: s.snapshot().step == steps)
    return s


def test_activation_swap_keeps_weights_bit_for_bit():
    s = _paused_session(tiny())
    try:
        before = s._control.exp.params()
        s.apply({"model.activation": "relu"})
        assert s.wait_commands(10)
        after = s._control.exp.params()
        assert before.keys() <= after.keys()
        for name, value in before.items():
            assert after[name].dtype == value.dtype
            assert after[name].tobytes() == value.tobytes(), name
        snap = s.snapshot()
        assert snap.config.model.activation == "relu" and snap.step == 5 and snap.run == 0
        assert snap.before["step"] == 5 and snap.before["change"] == "activation relu"
        assert len(snap.before["grad_norm"]) == 4
        assert snap.history.markers[-1] == (5, "activation relu")
        assert "carried over" in snap.message
        s.step_once()
        assert wait_for(lambda: s.snapshot().step == 6)  # and it keeps training
    finally:
        assert s.stop(1.0)


def test_init_swap_restarts_with_fresh_weights():
    s = _paused_session(tiny())
    try:
        before = s._control.exp.params()
        s.apply({"model.init": "he"})
        assert s.wait_commands(30)
        after = s._control.exp.params()
        assert any(after[n].tobytes() != before[n].tobytes() for n in before)
        snap = s.snapshot()
        assert snap.step == 0 and snap.run == 1 and snap.config.model.init == "he"
        assert snap.before["step"] == 5 and snap.before["change"] == "init he"
        assert snap.history.markers == ((0, "init he (fresh weights)"),)
        assert "fresh weights" in snap.message
    finally:
        assert s.stop(1.0)


def test_invalid_change_is_refused_at_once():
    s = Session(tiny(), start_paused=True)
    from gradtui import ConfigError

    with pytest.raises(ConfigError):
        s.apply({"model.activation": "swish"})
    s.stop()


def test_nonfinite_step_pauses_and_keeps_last_finite_weights():
    # a regression task (unbounded loss) with huge weights and learning rate overflows float32 in a step or two
    cfg = tiny(**{"data.task": "teacher", "model.activation": "relu", "model.init": "he", "model.init_gain": 10.0,
                  "train.lr": 1000.0})
    s = Session(cfg).start()
    try:
        assert s.wait(60)
        snap = s.snapshot()
        assert snap.status == "paused" and snap.pause_reason == "nonfinite"
        assert "non-finite" in snap.message and snap.latest["nonfinite"] is True
        assert all(np.isfinite(v).all() for v in s._control.exp.params().values())
        assert any("non-finite" in text for _, text in snap.history.markers)
        assert all(np.isfinite(snap.history.loss))
        # a remedy clears the non-finite pause into an ordinary one
        s.apply({"train.lr": 0.001})
        assert s.wait_commands(10)
        assert s.snapshot().pause_reason == "user"
    finally:
        assert s.stop(1.0)


def test_stop_is_prompt_while_running_and_before_start():
    s = Session(load_config("vanishing-sigmoid")).start()  # the full 20-layer preset
    assert wait_for(lambda: s.snapshot().step > 3, 60)
    t0 = time.monotonic()
    assert s.stop(1.0)
    assert time.monotonic() - t0 < 1.0
    assert s.snapshot().status == "stopped"
    Session(tiny()).stop()  # never started: returns at once


def test_stop_ends_a_session_whose_start_a_ctrl_c_broke_into(monkeypatch):
    """Ctrl-C at launch can land inside start(), before the worker thread runs (gradtui run
    then stops the session): stop() ends it instead of failing to join a thread never started."""
    s = Session(tiny())

    def interrupted(thread):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(threading.Thread, "start", interrupted)
        with pytest.raises(KeyboardInterrupt):
            s.start()
    assert s.stop(1.0)
    assert s.wait(0)  # halted: whoever waits for the run's end is released


def test_export_writes_a_readable_record(tmp_path):
    s = Session(tiny(), max_steps=300, history_capacity=50).start()
    try:
        assert s.wait(60)
        s.apply({"model.activation": "tanh"})
        assert s.wait_commands(10)
        path = s.export(tmp_path)
        rec = read_record(path)
        snap = s.snapshot()
        assert rec.header["export"] is True and rec.layer_names == list(snap.layer_names)
        assert [st["step"] for st in rec.steps] == list(snap.history.steps)
        assert any(e["event"] == "change" for e in rec.events)
        assert s.export(tmp_path) != path  # a second export does not overwrite the first
    finally:
        s.stop(1.0)


def test_stop_returns_within_its_timeout_even_when_a_step_is_slow(tmp_path):
    record = tmp_path / "run.jsonl"
    s = Session(tiny(), record_path=record).start()
    assert wait_for(lambda: s.snapshot().step > 3)
    exp = s._control.exp
    real_run = exp.run

    def slow_run(k):
        time.sleep(1.5)
        return real_run(k)

    exp.run = slow_run
    time.sleep(0.1)  # the worker is now inside a slow step
    t0 = time.monotonic()
    ended = s.stop(0.5)
    assert time.monotonic() - t0 < 1.0
    assert not ended  # it told the truth: the step is still running ...
    assert wait_for(lambda: not s.alive, 5)  # ... and the worker left right after it
    assert s.snapshot().status == "stopped"
    rec = read_record(record)
    assert rec.problems == [] and rec.events[-1]["event"] == "end"


def test_remedy_after_an_explosion_starts_from_the_last_healthy_weights():
    """exploding-init ruins its weights a step before they go non-finite; a remedy applied
    at the non-finite pause rolls back to the healthy checkpoint and then trains."""
    cfg = load_config("exploding-init")
    s = Session(cfg).start()
    try:
        assert s.wait(120)
        snap = s.snapshot()
        assert snap.pause_reason == "nonfinite", snap.message
        assert "last healthy weights (step 0)" in snap.message
        initial = s._control.checkpoint.saved["theta"].copy()
        s.apply({"model.batchnorm": True})
        assert s.wait_commands(10)
        snap = s.snapshot()
        assert "went back to the last healthy checkpoint (step 0)" in snap.message
        # the carried-over weights are the checkpoint's, not the ruined ones
        np.testing.assert_array_equal(s._control.exp.params()["hidden.0.W"].ravel(), initial[: 2 * 64])
        before = s.snapshot().step
        s.resume()
        assert wait_for(lambda: s.snapshot().step >= before + 200, 120)
        snap = s.snapshot()
        assert snap.pause_reason != "nonfinite"
        losses = snap.history.loss
        assert all(np.isfinite(losses))
        after = [loss for loss in losses[2:]]  # the two steps before the pause were the explosion
        assert max(after) < 10.0 and after[-1] < after[0]
    finally:
        assert s.stop(1.0)


def test_record_carries_the_theory_prediction_at_start_and_after_a_change(tmp_path):
    path = tmp_path / "run.jsonl"
    s = Session(tiny(), record_path=path, start_paused=True).start()
    try:
        assert wait_for(lambda: s.snapshot().status == "paused")
        s.apply({"model.activation": "relu"})
        assert s.wait_commands(10)
    finally:
        assert s.stop(1.0)
    predictions = [e for e in read_record(path).events if e["event"] == "prediction"]
    assert [e["step"] for e in predictions] == [0, 0]
    assert predictions[0]["applies"] is True and "sigmoid" not in predictions[1]["summary"]
    assert predictions[0]["summary"] != predictions[1]["summary"]
    assert predictions[0]["attenuation"] < 1e-3  # 3 sigmoid layers with normal(0.01) weights


def test_plain_resume_after_an_explosion_also_starts_from_the_healthy_weights():
    s = Session(load_config("exploding-init")).start()
    try:
        assert s.wait(120) and s.snapshot().pause_reason == "nonfinite"
        healthy = s._control.checkpoint.saved["theta"].copy()
        s.pause()  # hold it right after the rollback, before any step moves the weights
        s.resume()
        s.pause()
        assert s.wait_commands(10)
        assert any("weights back to step 0" in text for _, text in s.snapshot().history.markers)
        assert any(e["event"] == "rollback" for e in s.events())
        np.testing.assert_array_equal(s._control.exp.theta, healthy)
    finally:
        s.stop(1.0)


def test_pending_config_holds_queued_changes_before_the_worker_applies_them():
    s = Session(tiny(), start_paused=True)  # not started: nothing applies the queue yet
    s.apply({"train.lr": 0.05})
    s.apply({"model.activation": "relu"})
    assert s.pending_config.train.lr == 0.05 and s.pending_config.model.activation == "relu"
    assert s.config.train.lr == 0.1
    s.stop(1.0)
