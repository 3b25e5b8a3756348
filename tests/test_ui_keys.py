"""Pilot tests for every key of the interface, against a small fake session (no Numba, no training).

Each key is checked twice: what it sends to the session (the config change, pause,
step, restart ...) and what the screen shows afterwards.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from rich.console import Console

from gradtui.config import load_config
from gradtui.config.schema import ACTIVATIONS, INITS, OPTIMIZERS
from gradtui.config.summary import change_text
from gradtui.diagnosis.alert import Alert, Remedy
from gradtui.monitor.snapshot import HistoryView, Snapshot
from gradtui.sources.protocol import LIVE
from gradtui.ui import keys
from gradtui.ui.app import GradApp
from gradtui.ui.screens import HelpScreen, PresetPicker
from gradtui.ui.widgets import AlertsPanel, GradientBars, KeyBar, MitigationsPanel, StatusHeader

VANISHING = Alert(
    "vanishing", "critical", "hidden.0 gets 1e-12 of the gradient reaching hidden.19", ("hidden.0",),
    (Remedy("relu activation: slope 1", (("model.activation", "relu"),)),
     Remedy("batch norm", (("model.batchnorm", True),))),
    step=1, figure=1e-12,
)


class FakeSession:
    """Publishes synthetic Snapshots; records every command the app sends."""

    capabilities = LIVE

    def __init__(self, cfg, alerts=True):
        self.cfg = cfg
        self.step = 0
        self.paused = False
        self.version = 0
        self.applied: list[dict] = []
        self.restarts: list[bool] = []
        self.steps_requested = 0
        self.started = self.stopped = False
        self.before = None
        self.with_alerts = alerts
        self._snap = Snapshot()

    def _profile(self, cfg):
        n = cfg.model.depth + 1
        f = {"sigmoid": 0.25, "tanh": 0.6}.get(cfg.model.activation, 1.0)
        if cfg.model.batchnorm or cfg.model.residual:
            f = 1.0
        return tuple(0.1 * f ** (n - 1 - i) for i in range(n))

    def _publish(self):
        cfg = self.cfg
        n = cfg.model.depth + 1
        prefix = "hidden" if cfg.model.kind == "mlp" else cfg.model.kind
        names = tuple([f"{prefix}.{i}" for i in range(cfg.model.depth)] + ["output"])
        g = self._profile(cfg)
        latest = {
            "step": self.step, "loss": 1.0, "grad_norm": list(g), "delta_norm": [2 * x for x in g],
            "weight_norm": [3.0] * n, "update_ratio": [max(1e-12, x) for x in g],
            "time_delta_norm": [0.5 ** (cfg.data.seq_len - t) for t in range(cfg.data.seq_len)] if cfg.is_recurrent else None,
        }
        steps = tuple(range(1, self.step + 1))
        hist = HistoryView(steps=steps, loss=tuple(1.0 / (1 + 0.01 * s) for s in steps),
                           layers={"weight_norm": tuple(tuple(3.0 + 0.001 * s * (i + 1) for i in range(n)) for s in steps)})
        alerts = (VANISHING,) if self.with_alerts and g[0] < 1e-3 * g[-1] else ()
        self.version += 1
        self._snap = Snapshot(status="paused" if self.paused else "running", step=self.step, steps_per_second=100.0,
                              config=cfg, layer_names=names, latest=latest, history=hist, before=self.before,
                              alerts=alerts, version=self.version)

    def start(self):
        self.started = True
        self._publish()

    def snapshot(self):
        return self._snap

    @property
    def pending_config(self):
        return self.cfg

    def toggle_pause(self):
        self.paused = not self.paused
        self._publish()

    def step_once(self):
        self.steps_requested += 1
        self.step += 1
        self._publish()

    def apply(self, overrides):
        self.applied.append(dict(overrides))
        g = self._profile(self.cfg)
        self.before = {"step": self.step, "change": change_text(overrides),
                       "grad_norm": g, "delta_norm": tuple(2 * x for x in g), "time_delta_norm": None}
        self.cfg = self.cfg.with_overrides(overrides)
        self._publish()

    def restart(self, next_seed=False):
        self.restarts.append(next_seed)
        self.step = 0
        if next_seed:
            self.cfg = self.cfg.with_overrides({"train.seed": self.cfg.train.seed + 1})
        self._publish()

    def export(self, directory):
        path = Path(directory) / "run.jsonl"
        path.write_text("{}\n")
        return str(path)

    def stop(self, timeout=1.0):
        self.stopped = True
        return True


def mlp_cfg():
    return load_config("vanishing-sigmoid")


def rnn_cfg():
    return mlp_cfg().with_overrides({"model.kind": "rnn", "model.activation": "tanh", "model.depth": 1,
                                     "data.task": "adding", "data.seq_len": 20})


def make_app(cfg=None, alerts=True):
    sessions: list[FakeSession] = []

    def factory(c):
        s = FakeSession(c, alerts=alerts)
        sessions.append(s)
        return s

    app = GradApp(cfg or mlp_cfg(), source_factory=factory)
    return app, sessions


def header_text(app) -> str:
    """The header as the terminal shows it (rendered through Rich)."""
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(app.query_one(StatusHeader).render())
    return console.export_text()


def mitigations_text(app) -> str:
    return app.query_one(MitigationsPanel).render().plain


async def press(pilot, *keys_):
    await pilot.press(*keys_)
    await pilot.pause(0.05)


def run(coro):
    return asyncio.run(coro)


# -- the key table ---------------------------------------------------------------------------

def test_key_table_covers_the_issue_keys():
    assert [k.label for k in keys.KEYS] == list("aibrlwcgo+-][") + ["space"] + list("snxdtpe?q")  # x: a gradtui.torch writer only
    assert len({k.key for k in keys.KEYS}) == len(keys.KEYS)


def test_cycles_follow_the_schema_orders():
    cfg = mlp_cfg().with_overrides({"model.activation": "elu"})
    assert keys.cycle_change("a", cfg) == {"model.activation": ACTIVATIONS[ACTIVATIONS.index("elu") + 1]}
    assert keys.cycle_change("i", cfg) == {"model.init": INITS[INITS.index("normal") + 1]}
    assert keys.cycle_change("o", cfg) == {"train.optimizer": OPTIMIZERS[1]}
    last = mlp_cfg().with_overrides({"model.activation": ACTIVATIONS[-1]})
    assert keys.cycle_change("a", last) == {"model.activation": ACTIVATIONS[0]}


def test_alert_remedy_takes_precedence_and_limits_hold():
    cfg = mlp_cfg()
    assert keys.change_for("a", cfg, (VANISHING,)) == {"model.activation": "relu"}
    assert keys.change_for("a", cfg, ()) == {"model.activation": "tanh"}
    assert keys.change_for("g", cfg) == {}
    top = cfg.with_overrides({"train.lr": keys.LR_MAX, "model.depth": 1})
    assert keys.change_for("+", top) == {}
    assert keys.change_for("[", top) == {}
    cell = keys.change_for("g", rnn_cfg())
    assert cell == {"model.kind": "lstm"} or cell == {"model.kind": "lstm", "model.activation": "tanh"}


# -- every key through Pilot -----------------------------------------------------------------

@pytest.mark.parametrize("key,setting,expected,screen", [
    ("a", "model.activation", "relu", "relu"),  # the vanishing alert's remedy for a
    ("i", "model.init", "xavier", "xavier"),
    ("b", "model.batchnorm", True, "batch norm on"),
    ("r", "model.residual", True, "residual   on"),
    ("c", "train.clip", "norm", "norm(1)"),
    ("o", "train.optimizer", "momentum", "momentum"),
    ("plus", "train.lr", 0.2, "learn rate 0.2"),
    ("minus", "train.lr", 0.05, "learn rate 0.05"),
    ("right_square_bracket", "model.depth", 21, "depth      21"),
    ("left_square_bracket", "model.depth", 19, "depth      19"),
])
def test_mitigation_keys_change_the_config_and_the_screen(key, setting, expected, screen):
    async def go():
        app, sessions = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.05)
            await press(pilot, key)
            session = sessions[0]
            assert session.applied and session.applied[-1][setting] == expected
            assert session.cfg.get(setting) == expected
            await pilot.pause(0.15)
            assert screen in mitigations_text(app)
            if setting in ("model.activation", "train.optimizer", "model.depth"):
                assert str(expected) in header_text(app)  # the one-line summary follows
    run(go())


def test_g_is_greyed_on_an_mlp_and_cycles_cells_on_an_rnn():
    async def go():
        app, sessions = make_app()
        notes = []
        app.notify = lambda message, **kw: notes.append(message)
        async with app.run_test(size=(120, 40)) as pilot:
            await press(pilot, "g")
            assert sessions[0].applied == []
            assert notes == ["g: not available for a mlp model"]  # greyed out, and it says why
            await press(pilot, "t")
            assert app.mode == "grad" and "t: the time view is for recurrent models" in notes
            bar = app.query_one(KeyBar)
            assert any("disabled" in str(span.style) or span.style for span in bar.render().spans)
        app, sessions = make_app(rnn_cfg())
        async with app.run_test(size=(120, 40)) as pilot:
            assert app.check_action("mitigate", ("g",)) is True
            await press(pilot, "g")
            assert sessions[0].cfg.model.kind == "lstm"
            await pilot.pause(0.15)
            assert "lstm" in mitigations_text(app)
            await press(pilot, "g")
            assert sessions[0].cfg.model.kind == "gru"
    run(go())


def test_repeated_presses_build_on_the_change_just_sent():
    async def go():
        app, sessions = make_app(alerts=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("o", "o", "o")
            await pilot.pause(0.1)
            assert [c["train.optimizer"] for c in sessions[0].applied] == ["momentum", "adam", "rmsprop"]
    run(go())


def test_space_s_and_n_drive_the_session():
    async def go():
        app, sessions = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            s = sessions[0]
            await press(pilot, "space")
            assert s.paused
            await pilot.pause(0.15)
            assert "paused" in header_text(app)
            await press(pilot, "s")
            await press(pilot, "s")
            assert s.steps_requested == 2
            await pilot.pause(0.15)
            assert "step 2" in header_text(app)
            await press(pilot, "space")
            assert not s.paused
            await press(pilot, "n")
            assert s.restarts == [True]
            assert s.cfg.train.seed == 1
    run(go())


def test_d_and_t_switch_the_bars_view():
    async def go():
        app, _ = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            bars = app.query_one(GradientBars)
            assert "||dL/dW||" in bars.border_title
            await press(pilot, "d")
            assert app.mode == "delta" and "||dL/dz||" in bars.border_title
            await press(pilot, "d")
            assert app.mode == "grad"
            await press(pilot, "t")  # MLP: no time view
            assert app.mode == "grad"
        app, _ = make_app(rnn_cfg())
        async with app.run_test(size=(120, 40)) as pilot:
            bars = app.query_one(GradientBars)
            await pilot.pause(0.05)
            # recurrent models open on the time view; t switches to layers and back
            assert app.mode == "time" and "||dL/dh_t||" in bars.border_title
            assert "t=1" in bars.render().plain and "t=20" in bars.render().plain
            await press(pilot, "t")
            assert app.mode == "grad" and "||dL/dW||" in bars.border_title
            await press(pilot, "t")
            assert app.mode == "time"
    run(go())


def test_compiling_status_is_shown():
    async def go():
        app, sessions = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            s = sessions[0]
            s.version += 1
            s._snap = Snapshot(status="compiling", config=s.cfg, version=s.version)
            await pilot.pause(0.25)
            assert "compiling kernels, first run only" in app.query_one(GradientBars).render().plain
    run(go())


def test_the_header_says_numpy_runs_until_the_kernels_take_over():
    async def go():
        app, sessions = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            s = sessions[0]
            for tier, shown in (("reference", True), ("kernels", False)):
                s.version += 1
                s._snap = Snapshot(status="running", config=s.cfg, version=s.version, step=3, tier=tier)
                await pilot.pause(0.25)
                assert ("NumPy tier · kernels compiling" in header_text(app)) is shown, tier
                assert "step 3" in header_text(app)
    run(go())


def test_no_color_keeps_health_symbols(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")

    async def go():
        app, _ = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.1)
            assert app.no_color
            text = app.query_one(GradientBars).render().plain
            assert "hidden.0 ↓" in text and "output ✓" in text
    run(go())


def test_before_marker_after_a_swap():
    async def go():
        app, _ = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            assert "◆ before" not in app.query_one(GradientBars).render().plain
            await press(pilot, "a")
            await pilot.pause(0.15)
            text = app.query_one(GradientBars).render().plain
            assert "◆ before activation relu (step 0)" in text
    run(go())


def test_help_screen_opens_and_closes():
    async def go():
        app, _ = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await press(pilot, "question_mark")
            assert isinstance(app.screen, HelpScreen)
            await press(pilot, "escape")
            assert not isinstance(app.screen, HelpScreen)
    run(go())


def test_preset_picker_loads_a_preset_in_a_new_session():
    async def go():
        app, sessions = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await press(pilot, "p")
            assert isinstance(app.screen, PresetPicker)
            await press(pilot, "enter")
            assert not isinstance(app.screen, PresetPicker)
            assert len(sessions) == 2 and sessions[0].stopped and sessions[1].started
            await press(pilot, "p")
            await press(pilot, "escape")
            assert len(sessions) == 2
    run(go())


def test_export_writes_svg_and_record_and_shows_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def go():
        app, _ = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await press(pilot, "e")
            svg, record = app.last_export
            assert Path(svg).is_file() and Path(svg).read_text().startswith("<svg")
            assert Path(record).is_file()
            assert any(svg in n.message for n in app._notifications)
    run(go())


def test_q_quits_and_stops_the_session():
    async def go():
        app, sessions = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("q")
            await pilot.pause(0.05)
        assert sessions[0].stopped
        assert app.return_code == 0
    run(go())


@pytest.mark.parametrize("size,small", [((50, 15), True), ((59, 30), True), ((100, 19), True), ((80, 24), False)])
def test_too_small_terminal_says_so(size, small):
    async def go():
        app, _ = make_app()
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.1)
            assert app.query_one("#too-small").display is small
            assert app.query_one("#main").display is not small
            await press(pilot, "q")
    run(go())


def test_compact_layout_keeps_bars_alerts_and_summary():
    async def go():
        app, _ = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.1)
            assert app.query_one("#bars").display and app.query_one("#alerts").display
            assert not app.query_one("#loss").display
            assert "vanishing" in app.query_one(AlertsPanel).content.plain
            assert not app.query_one("#mitigations").display  # alerts up: they get the room
            await press(pilot, "b")  # batch norm: the fake's alert clears
            await pilot.pause(0.6)
            assert app.query_one("#mitigations").display
            bars = app.query_one(GradientBars).render().plain
            assert "rows" in bars  # aggregated, and it says so
        app, _ = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.1)
            assert app.query_one("#loss").display and app.query_one("#weights").display
            assert "hidden.0 " in app.query_one(GradientBars).render().plain
    run(go())


def test_overlays_do_not_stop_the_main_screen_updating():
    """With help or the picker on top, new snapshots still reach the main screen's widgets."""
    async def go():
        app, sessions = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            for key in ("question_mark", "p"):
                await press(pilot, key)
                sessions[0].step_once()
                await pilot.pause(0.25)  # several polls with the overlay up
                await press(pilot, "escape")
            assert "step 2" in header_text(app)
    run(go())
