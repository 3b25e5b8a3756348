"""`gradtui replay`: a record of each preset family, played back, shows what the live run showed.

Each family is trained live once (a real Session writing a record); the replay at the
record's last step must show the same alerts, the same bar values, markers and ◆ profile,
and its screen (Pilot, 120x40 and 80x24) the same bars as a screen fed the live snapshot.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import gradtui
from gradtui.sources.protocol import REPLAY
from gradtui.sources.replay import ReplaySource
from gradtui.ui.app import GradApp

from conftest import record_live_run

FAMILIES = {
    "mlp": ("vanishing-sigmoid", {"data.samples": 512}, 80, None, None),
    "recurrent": ("rnn-vanishing-adding", {"data.samples": 512}, 60, None, None),
    "change": ("vanishing-sigmoid", {"data.samples": 512}, 90, 40, {"model.activation": "relu"}),
    "nonfinite": ("exploding-init", {}, 60, None, None),
    "transformer": ("transformer-rank-collapse", {"data.samples": 512}, 30, None, None),  # collapse rises at step ~20
}
SIZES = [(120, 40), (80, 24)]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """family -> (record path, the live run's final Snapshot), trained once per module."""
    cache = {}

    def get(family):
        if family not in cache:
            preset, overrides, steps, change_at, change = FAMILIES[family]
            cfg = gradtui.load_config(preset).with_overrides(overrides)
            path = tmp_path_factory.mktemp(family) / "run.jsonl"
            cache[family] = (path, record_live_run(cfg, path, steps, change_at, change))
        return cache[family]

    return get


def alert_identity(alerts):
    return [(a.kind, a.severity, a.layers, a.step) for a in alerts]


@pytest.mark.parametrize("family", FAMILIES)
def test_replay_at_the_last_step_is_the_live_state(family, recorded):
    path, live = recorded(family)
    src = ReplaySource(path, start_paused=True).start()
    src.seek_to(-1)
    snap = src.snapshot()
    assert snap.step == live.step and snap.run == live.run
    # a record carries each alert as it was raised (a live alert's figures and layers follow the
    # latest step: the Transformer's dead alert lists fewer layers at step 30 than at step 21)
    as_raised = {a.kind: a for _, a in live.raised}
    assert alert_identity(snap.alerts) == alert_identity(as_raised[a.kind] for a in live.alerts) and live.alerts
    raised_messages = {a.kind: a.message for _, a in live.raised}
    assert all(a.message == raised_messages[a.kind] for a in snap.alerts)  # the messages as raised
    assert [(s, a.kind) for s, a in snap.raised] == [(s, a.kind) for s, a in live.raised]
    np.testing.assert_equal(snap.latest, live.latest)  # NaN where the live run had NaN
    np.testing.assert_equal(snap.latest_finite, live.latest_finite)
    assert snap.history.steps == live.history.steps and snap.history.loss == live.history.loss
    assert snap.history.markers == live.history.markers
    assert snap.history.eval_steps == live.history.eval_steps and snap.history.eval_loss == live.history.eval_loss
    assert snap.pause_reason == live.pause_reason
    np.testing.assert_equal(snap.prediction, live.prediction)  # the theory line, from the record's prediction events
    assert snap.prediction is not None and snap.prediction["applies"] == (family not in ("recurrent", "transformer"))
    assert (snap.before is None) == (live.before is None)
    if live.before is not None:
        assert {k: snap.before[k] for k in ("step", "change", "grad_norm")} == {k: live.before[k] for k in ("step", "change", "grad_norm")}
    assert snap.config.to_dict() == live.config.to_dict()
    if family == "change":
        assert any("activation relu" in text for _, text in snap.history.markers)  # the live run's wording
    if family == "nonfinite":
        assert snap.pause_reason == "nonfinite" and snap.latest["nonfinite"] and "nonfinite" in [a.kind for a in snap.alerts]
    if family == "transformer":
        assert "collapse" in [a.kind for a in snap.alerts] and len(snap.latest["token_spread"]) == live.config.model.depth


def test_replay_moves_back_and_forth_identically(recorded):
    path, _ = recorded("change")
    src = ReplaySource(path, start_paused=True).start()
    src.seek_step(30)
    first = src.snapshot()
    assert first.step == 30 and first.position == "step 30 / 90" and first.before is None
    src.seek_to(-1)
    src.seek_step(30)  # back: fed again from the start
    again = src.snapshot()
    assert again.latest == first.latest and alert_identity(again.alerts) == alert_identity(first.alerts)
    assert again.history.steps == first.history.steps


def test_replay_moves_back_from_keyframes_to_the_same_state(recorded, monkeypatch):
    """A step back restores the nearest keyframe (not the record's start) and shows exactly
    what a replay fed from the start shows at that step, across the change's restart."""
    import gradtui.sources.replay as replay

    monkeypatch.setattr(replay, "MIN_KEYFRAME_LINES", 7)
    path, _ = recorded("change")
    src = ReplaySource(path, start_paused=True).start()
    src.seek_to(-1)
    assert len(src._keyframes) >= 10
    resets = []
    monkeypatch.setattr(src, "_reset", lambda: resets.append(1) or ReplaySource._reset(src))
    for step in (89, 60, 41, 40, 39, 12):
        src.seek_step(step)
        fresh = ReplaySource(path, start_paused=True).start()
        fresh.seek_step(step)
        got, want = src.snapshot(), fresh.snapshot()
        assert got.step == want.step == step and got.run == want.run
        np.testing.assert_equal(got.latest, want.latest)
        assert alert_identity(got.alerts) == alert_identity(want.alerts)
        assert got.history.steps == want.history.steps and got.history.loss == want.history.loss
        assert got.history.markers == want.history.markers and got.before == want.before
        assert [e for e in src._monitor.journal.events()] == [e for e in fresh._monitor.journal.events()]
        src.seek_to(-1)
    assert not resets  # every step back started from a keyframe


class FrozenSource:
    """The live run's last snapshot, as the live screen showed it (with the replay's footer, so
    both screens give the bars the same height)."""

    capabilities = REPLAY

    def __init__(self, snap):
        self.snap = snap

    def start(self):
        return self

    def stop(self, timeout=1.0):
        return True

    def snapshot(self):
        return self.snap

    @property
    def pending_config(self):
        return self.snap.config


async def screen_text(app, size):
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        if isinstance(app.source, ReplaySource):
            app.source.seek_to(-1)
        app.redraw_now()
        await pilot.pause()
        p = app.panels
        return {"bars": p.bars.render().plain, "alerts": p.alerts.content.plain, "header": p.header.render().plain,
                "keys": p.keys.render().plain}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("family", FAMILIES)
def test_replay_screen_matches_the_live_screen(family, size, recorded):
    path, live = recorded(family)
    shown = asyncio.run(screen_text(GradApp(None, source=ReplaySource(path, start_paused=True), name="replay"), size))
    was = asyncio.run(screen_text(GradApp(None, source=FrozenSource(live), name="replay"), size))
    # the rows, the legend and the notes match; the help paragraph under them shows only where
    # the header leaves room, and the header holds each source's own message
    assert shown["bars"].split("\n\nEach bar")[0] == was["bars"].split("\n\nEach bar")[0]
    for alert in live.alerts:
        assert alert.kind.replace("_", " ") in shown["alerts"]
    remedy_lines = [line for line in shown["alerts"].splitlines() if line.startswith("     ") and line.strip()]
    assert remedy_lines and "  a  " not in shown["alerts"]  # remedies listed, without keys
    assert "--set" not in shown["alerts"] and "◀ try" not in shown["alerts"]  # nothing to press in a replay
    assert f"step {live.step:,} / {live.step:,}" in shown["header"] and "end of replay" in shown["header"]
    assert "home/end" in shown["keys"] and "[/] speed" in shown["keys"]


def test_replay_keys(recorded):
    path, live = recorded("change")
    src = ReplaySource(path, start_paused=True)
    app = GradApp(None, source=src, name="replay")
    asyncio.run(drive_replay(app, src, live))


async def drive_replay(app, src, live):
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("end")
        assert src.snapshot().step == live.step
        await pilot.press("left", "left")
        assert src.snapshot().step == live.step - 2 and src.snapshot().status == "paused"
        await pilot.press("right")
        assert src.snapshot().step == live.step - 1
        speed = src.speed
        await pilot.press("right_square_bracket")
        assert src.speed > speed
        await pilot.press("less_than_sign", "less_than_sign")
        assert src.speed < speed
        await pilot.press("home")
        assert src.snapshot().step == 0
        cfg = src.pending_config
        await pilot.press("a")  # a mitigation: unavailable, with the reason
        await pilot.pause()
        assert src.pending_config is cfg
        assert any("unavailable" in n.message and "finished record" in n.message for n in app._notifications)
        await pilot.press("question_mark")  # the help lists the playback keys
        await pilot.pause()
        shown = app.export_screenshot().replace("&#160;", " ")
        assert "Playing a record back" in shown and "The end of the record." in shown and "unavailable here" in shown
        await pilot.press("escape")
        await pilot.press("space")
        assert src.snapshot().status == "running"
        await pilot.pause(0.3)
        assert src.snapshot().step > 0
