"""What the screen says, at the sizes a newcomer uses (120x40, 80x24, 70x24, 60x20).

Pilot tests against sessions that publish hand-made Snapshots (no training), so each
test shows one situation: text that must not be cut, the minimum size, rows that line
up, states before the first step, dead ends, signals that must agree, the loss story,
the preset picker and the exported SVG.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace

import pytest
from test_ui_keys import FakeSession, make_app, mlp_cfg, rnn_cfg

from gradtui.config import load_config
from gradtui.diagnosis.alert import Alert, Remedy
from gradtui.diagnosis.remedies import remedies_for
from gradtui.monitor import Monitor
from gradtui.monitor.snapshot import HistoryView, Snapshot
from gradtui.theory import prediction_fields
from gradtui.ui.app import GradApp
from gradtui.ui.keys import remedy_keys
from gradtui.ui.screens import PresetPicker
from gradtui.ui.widgets import AlertsPanel, GradientBars, LossPlot, MitigationsPanel, StatusHeader, WeightPanel
from gradtui.ui.widgets.alerts import split_headline

ROW = re.compile(r"^\s*(?P<label>\S+) (?P<mark>[↓✓↑✗]) (?P<bar>.+) (?P<value>-?\d\.\de[+-]\d\d|nan|inf|0)$")


class StaticSession(FakeSession):
    """A session whose snapshot a test sets by hand (``publish``)."""

    def __init__(self, cfg, snap: Snapshot | None = None):
        super().__init__(cfg)
        self._snap = snap or Snapshot(status="compiling", config=cfg)

    def start(self):
        self.started = True

    def publish(self, **fields):
        self.version += 1
        self._snap = replace(self._snap, version=self.version, **fields)


def static_app(cfg, snap=None):
    sessions = []

    def factory(c):
        s = StaticSession(c, snap if not sessions else None)
        sessions.append(s)
        return s

    return GradApp(cfg, source_factory=factory), sessions


def profile_snapshot(cfg, grad, status="paused", **fields):
    n = len(grad)
    names = tuple([f"hidden.{i}" for i in range(n - 1)] + ["output"])
    latest = {"step": fields.pop("step", 10), "loss": 0.5, "nonfinite": False, "grad_norm": list(grad),
              "delta_norm": list(grad), "update_ratio": [1e-3] * n, "weight_norm": [1.0] * n}
    latest.update(fields.pop("latest", {}))
    monitor = Monitor()
    monitor.note_prediction(prediction_fields(cfg))  # as the session's monitor has it
    base = dict(status=status, step=latest["step"], config=cfg, layer_names=names, latest=latest,
                latest_finite=latest, history=HistoryView(steps=(1, 2), loss=(1.0, 0.9)), version=1,
                prediction=monitor.prediction)
    base.update(fields)
    return Snapshot(**base)


def bar_rows(app):
    bars = app.query_one(GradientBars)
    width = bars.content_region.width
    lines = bars.render().plain.splitlines()
    return [line for line in lines if ROW.match(line)], lines, width


def run(coro):
    return asyncio.run(coro)


# -- 11. the stated minimum size ---------------------------------------------------------------

@pytest.mark.parametrize("size", [(60, 20), (70, 24), (80, 24)])
def test_every_row_shows_name_a_bar_of_ten_cells_and_its_value(size):
    async def go():
        app, _ = make_app()
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.2)
            assert not app.query_one("#too-small").display
            rows, lines, width = bar_rows(app)
            assert len(rows) >= 5, lines
            for line in rows:
                assert len(line) <= width, line  # nothing cropped at the right edge
                assert len(ROW.match(line)["bar"]) >= 10, line
            assert app.query_one("#alerts").display  # alerts shrink, they do not vanish
    run(go())


# -- 12. rows line up ----------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [50, 100])
def test_weight_rows_line_up_with_the_bars_when_grouped_with_the_before_legend(depth):
    async def go():
        cfg = load_config("residual-rescue").with_overrides({"model.depth": depth})
        app, sessions = make_app(cfg)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("r")
            await pilot.pause(0.7)
            bars, weights = app.query_one(GradientBars), app.query_one(WeightPanel)
            assert bars.region.y == weights.region.y and bars.region.height == weights.region.height
            b_lines = bars.render().plain.splitlines()
            w_lines = weights.render().plain.splitlines()
            assert any(line.startswith("◆ before residual on") for line in b_lines)
            b_rows = [i for i, line in enumerate(b_lines) if ROW.match(line)]
            w_rows = [i for i, line in enumerate(w_lines) if re.search(r"[·~]\s+\S+$", line) and "frozen" not in line]
            assert b_rows == w_rows  # the same lines of the two panels
            assert b_rows[-1] + 1 < len(b_lines) and "vanishing" in b_lines[b_rows[-1] + 1]  # the output row, then the legend
    run(go())


# -- 10. nothing cut silently --------------------------------------------------------------------

def test_before_legend_keeps_the_whole_step_number_at_80x24():
    async def go():
        cfg = mlp_cfg()
        grad = [0.1] * 21
        before = {"step": 23550, "change": "activation leaky_relu, init he, init gain 1, batch norm on, residual on",
                  "grad_norm": tuple(grad), "delta_norm": tuple(grad)}
        app, _ = static_app(cfg, profile_snapshot(cfg, grad, before=before))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            text = app.query_one(GradientBars).render().plain
            legend = next(line for line in text.splitlines() if line.startswith("◆"))
            assert legend.endswith("… (step 23,550)"), legend
    run(go())


LONG = Alert("exploding", "warning",
             "The gradient norm is 2.4e+04 (alert above 1e+03): the steps it drives are huge, so the next few can blow "
             "the weights up to NaN. " * 4, (),
             tuple(Remedy(f"remedy {k}: a long explanation of why it helps", ((setting, value),)) for k, setting, value in
                   (("c", "train.clip", "norm"), ("-", "train.lr", 0.05), ("i", "model.init", "he"), ("b", "model.batchnorm", True)))
             + (Remedy("adam", (("train.optimizer", "adam"),)),))


@pytest.mark.parametrize("message, fact, cause", [
    ("hidden.0 gets 8.4e-32 of the gradient reaching hidden.19: each sigmoid passes a quarter; theory 5e-33.",
     "hidden.0 gets 8.4e-32 of the gradient reaching hidden.19.", "Each sigmoid passes a quarter; theory 5e-33."),
    ("The tokens collapsed. Their spread is 1e-3: below 0.05.", "The tokens collapsed.", "Their spread is 1e-3: below 0.05."),
    ("The gradient reaching t=1 is 3e-9 of the gradient at t=100", "The gradient reaching t=1 is 3e-9 of the gradient at t=100", ""),
])
def test_an_alert_headline_is_its_first_fact_before_a_colon_or_full_stop(message, fact, cause):
    assert split_headline(message) == (fact, cause)


def test_an_alert_message_and_every_remedy_stay_readable_with_a_scroll_hint_at_80x24():
    async def go():
        cfg = mlp_cfg()
        app, _ = static_app(cfg, profile_snapshot(cfg, [0.1] * 21, alerts=(LONG,)))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.3)
            panel = app.query_one(AlertsPanel)
            text = panel.content.plain
            flat = " ".join(text.split())
            fact, cause = LONG.message.split(": ", 1)  # the diagnosis writes "fact: cause."
            assert flat.index(fact + ".") < flat.index(" c remedy c") < flat.index("T" + cause[1:].strip())  # keys right after the fact
            for key in "c-ib":
                assert f" {key}  remedy {key}" in text
            assert "adam (no key: --set)" in text
            assert panel.max_scroll_y > 0 and "PgDn" in panel.border_subtitle
            for _ in range(6):
                await pilot.press("pagedown")
            await pilot.pause(0.1)
            assert panel.scroll_y == panel.max_scroll_y  # the last remedy is in view
            await pilot.press("pageup")
            await pilot.pause(0.1)
            assert panel.scroll_y < panel.max_scroll_y
    run(go())


def test_a_long_status_message_goes_under_the_summary_and_whole_into_the_alerts_panel():
    async def go():
        cfg = mlp_cfg()
        message = ("applied init he: init needs fresh weights, so training restarted; the explanation goes on "
                   "for long enough that it cannot fit in two lines of an eighty column terminal, not even nearly, "
                   "so the header ends it with an ellipsis and the alerts panel shows it whole")
        app, _ = static_app(cfg, profile_snapshot(cfg, [0.1] * 21, message=message))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.3)
            header = app.query_one(StatusHeader).render().plain.splitlines()
            assert header[1].startswith("loss 0.5 · mlp 20x64 sigmoid")
            assert header[2].startswith("applied init he: init needs fresh weights")
            assert header[-1].endswith("…")
            assert message in " ".join(app.query_one(AlertsPanel).content.plain.split())
    run(go())


def test_picker_description_at_80x24_reaches_its_key_advice():
    async def go():
        app, _ = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("p")
            await pilot.pause(0.2)
            picker = app.screen
            assert isinstance(picker, PresetPicker)
            desc = picker.query_one("#preset-description")
            text = picker.query_one("#preset-text")
            assert "Press b for batch norm" in " ".join(str(text.render()).split())
            lines = text.region.height
            assert lines >= 8 and desc.region.height >= 3
            # the whole text is in view, or the panel scrolls down to its last line
            assert lines <= desc.scrollable_content_region.height or desc.max_scroll_y > 0
            desc.scroll_end(animate=False)
            await pilot.pause(0.1)
            assert desc.scroll_y + desc.scrollable_content_region.height >= lines
            options = picker.query_one("#preset-list")
            assert options.get_option_at_index(options.highlighted).id == "vanishing-sigmoid"
            top, rows = options.scroll_offset.y, options.scrollable_content_region.height
            assert top <= options.highlighted < top + rows  # the running preset is in view
    run(go())


# -- 13. states before the first step -------------------------------------------------------------

@pytest.mark.parametrize("cfg_fn", [mlp_cfg, rnn_cfg])
def test_before_the_first_step_every_panel_says_it_waits(cfg_fn):
    async def go():
        cfg = cfg_fn()
        snap = Snapshot(status="running", step=0, config=cfg, version=1)
        app, _ = static_app(cfg, snap)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            assert "waiting for the first step" in app.query_one(StatusHeader).render().plain
            assert "▶ running" not in app.query_one(StatusHeader).render().plain
            assert "waiting for the first step" in app.query_one(GradientBars).render().plain
            alerts = app.query_one(AlertsPanel).content.plain
            assert "no problem detected" not in alerts and "waiting for the first step" in alerts
            if not cfg.is_recurrent:
                assert "waiting" in app.query_one(LossPlot).border_subtitle
    run(go())


def test_loading_a_preset_clears_the_previous_runs_plot_and_bars():
    async def go():
        cfg = mlp_cfg()
        hist = HistoryView(steps=tuple(range(1, 200)), loss=tuple(1.0 / s for s in range(1, 200)))
        app, sessions = static_app(cfg, profile_snapshot(cfg, [0.1] * 21, status="running", history=hist))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            assert app.query_one(LossPlot).border_subtitle == ""
            app._load_preset("rnn-vanishing-adding")
            await pilot.pause(0.3)
            assert len(sessions) == 2 and sessions[1].snapshot().status == "compiling"
            assert "waiting" in app.query_one(LossPlot).border_subtitle
            assert "compiling" in app.query_one(GradientBars).render().plain
            assert "no time profile" not in app.query_one(GradientBars).render().plain
    run(go())


def test_measured_attenuation_without_a_last_layer_error_does_not_say_no_step_yet():
    async def go():
        cfg = load_config("dying-relu")
        n = cfg.model.depth + 1
        snap = profile_snapshot(cfg, [0.0] * (n - 1) + [0.1], step=7772)
        app, _ = static_app(cfg, snap)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            text = app.query_one(AlertsPanel).content.plain
            assert "no step yet" not in text and "measured - (the last hidden layer's error is 0" in text
    run(go())


# -- 14. no silent dead ends ----------------------------------------------------------------------

def test_paused_says_space_resumes():
    async def go():
        app, sessions = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("space")
            await pilot.pause(0.2)
            assert "paused · space resumes" in app.query_one(StatusHeader).render().plain
    run(go())


def test_panels_revealed_by_a_resize_while_paused_are_drawn_at_once():
    async def go():
        app, sessions = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("space")
            for _ in range(3):
                sessions[0].step_once()
            await pilot.pause(0.3)
            assert not app.query_one(WeightPanel).display
            version = sessions[0].snapshot().version
            await pilot.resize_terminal(120, 40)
            await pilot.pause(0.3)
            assert sessions[0].snapshot().version == version  # no new snapshot came
            weights = app.query_one(WeightPanel).render().plain
            assert "|W|/start" in weights and "waiting" not in weights
            assert app.query_one(LossPlot).border_subtitle == ""  # the plot was drawn
    run(go())


# -- 15. signals that agree -------------------------------------------------------------------------

def test_try_marks_only_the_one_or_two_best_remedies():
    async def go():
        cfg = mlp_cfg()
        alerts = tuple(Alert(kind, "warning", "m", (), remedies_for(kind, cfg)) for kind in ("vanishing", "saturation"))
        assert sum(1 for a in alerts for key in remedy_keys(a.remedies) if key) >= 5
        app, _ = static_app(cfg, profile_snapshot(cfg, [0.1] * 21, alerts=alerts))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            text = app.query_one(MitigationsPanel).render().plain
            marked = [line for line in text.splitlines() if "◀ try" in line]
            assert 1 <= len(marked) <= 2, text
            assert any("batch norm" in line for line in marked)  # the first remedy for tiny weights
            assert app.query_one(AlertsPanel).content.plain.count("◀ try") >= len(marked)
    run(go())


def test_row_marks_agree_with_the_vanishing_alert():
    """A big output-layer gradient (as after b) with healthy hidden layers: no red rows, no alert."""
    async def go():
        cfg = mlp_cfg()
        grad = [1e-3] * 20 + [5.0]  # hidden layers alike, the output layer 5000x larger
        app, _ = static_app(cfg, profile_snapshot(cfg, grad))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            rows, lines, _ = bar_rows(app)
            assert rows and all(ROW.match(line)["mark"] == "✓" for line in rows), lines
            assert "no problem detected" in app.query_one(AlertsPanel).content.plain
    run(go())


def test_red_rows_without_an_alert_say_why():
    async def go():
        cfg = mlp_cfg()
        grad = [1e-9] * 3 + [1e-2] * 18
        app, _ = static_app(cfg, profile_snapshot(cfg, grad))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            text = app.query_one(GradientBars).render().plain
            assert "no vanishing alert: it rises only after hidden.0 is ↓ for 20 steps in a row" in " ".join(text.split())
        # ↓ in the dL/dW view only: the alert needs both, and the note says so
        snap = profile_snapshot(cfg, grad, latest={"delta_norm": [1e-2] * 21})
        app, _ = static_app(cfg, snap)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            text = " ".join(app.query_one(GradientBars).render().plain.split())
            assert "no vanishing alert: it needs hidden.0 ↓ in both ||dL/dW|| and ||dL/dz||" in text
    run(go())


def test_a_nonfinite_pause_shows_the_last_finite_profile_marked_exploding():
    async def go():
        cfg = load_config("exploding-init")
        n = cfg.model.depth + 1
        finite = [10.0 ** (i / 2) for i in range(n)]
        snap = profile_snapshot(cfg, [float("nan")] * n, step=6, pause_reason="nonfinite",
                                latest={"nonfinite": True, "loss": float("nan")})
        finite_dict = dict(snap.latest, step=5, nonfinite=False, grad_norm=finite, delta_norm=finite, loss=3.0)
        snap = replace(snap, latest_finite=finite_dict)
        app, _ = static_app(cfg, snap)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            bars = app.query_one(GradientBars)
            text = bars.render().plain
            assert "exploding" in bars.border_title
            assert "✗ step 6 went non-finite (exploding); the bars show step 5, the last finite one" in " ".join(text.split())
            rows, lines, _ = bar_rows(app)
            assert rows and not any(ROW.match(line)["value"] == "nan" for line in rows)
            assert "loss 3" in app.query_one(StatusHeader).render().plain
    run(go())


def test_one_meaning_per_symbol_and_screen_labels_for_changes():
    async def go():
        cfg = mlp_cfg()
        alert = Alert("vanishing", "warning", "m", (), remedies_for("vanishing", cfg))
        app, sessions = static_app(cfg, profile_snapshot(cfg, [0.1] * 21, alerts=(alert,)))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            alerts = app.query_one(AlertsPanel).content.plain
            assert "·" not in alerts.split("\n", 1)[1]  # "·" means frozen (weights), not "no key"
            assert "(no key: --set)" in alerts
    run(go())


# -- 16. the loss story ------------------------------------------------------------------------------

def test_loss_and_held_out_accuracy_are_numbers_on_screen_at_every_size():
    async def go():
        for size in ((120, 40), (80, 24), (60, 20)):
            cfg = mlp_cfg()
            app, _ = static_app(cfg, profile_snapshot(cfg, [0.1] * 21, evaluation={"loss": 0.7, "accuracy": 0.525}))
            async with app.run_test(size=size) as pilot:
                await pilot.pause(0.3)
                header = app.query_one(StatusHeader).render().plain
                assert "loss 0.5" in header and "acc 52.5%" in header, (size, header)
                second = header.splitlines()[1]  # the summary drops whole parts: no number is cut
                assert second.endswith((" …", "no clip")) and "sgd lr 0.1" in second or "sgd" not in second, second
    run(go())


def test_loss_plot_marks_a_change_and_gives_the_time_since_it_half_the_width():
    async def go():
        cfg = mlp_cfg()
        steps = tuple(range(1, 3001))
        hist = HistoryView(steps=steps, loss=tuple(0.69 if s < 2800 else 0.69 * 0.99 ** (s - 2800) for s in steps),
                           markers=((2800, "batch norm on"),))
        app, _ = static_app(cfg, profile_snapshot(cfg, [0.1] * 21, history=hist, step=3000))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            plot = app.query_one(LossPlot)
            assert plot.border_title.startswith("loss from step 2,600 ·")
            assert plot.border_subtitle == "│ step 2,800: batch norm on"
    run(go())


def test_log_axis_labels_on_a_narrow_range_are_several_and_readable():
    from gradtui.ui.widgets.loss_plot import log_ticks

    for values in ([0.55, 0.6, 0.69], [0.9, 1.25], [1.05, 1.06]):
        ticks = log_ticks(values)
        assert len(ticks) >= 3 and len({label for _, label in ticks}) == len(ticks), ticks
        assert all(re.fullmatch(r"\d\.\d+|\d", label) for _, label in ticks), ticks
        assert min(values) <= ticks[0][0] * 1.01 and ticks[-1][0] <= max(values) * 1.01  # inside the plotted range
    assert [label for _, label in log_ticks([1e-3, 1.0])] == ["1e-3", "1e-2", "1e-1", "1e+0"]


def test_weight_sparklines_tell_growth_from_stillness():
    async def go():
        cfg = mlp_cfg().with_overrides({"model.depth": 3})
        steps = tuple(range(1, 41))
        # hidden.0 still (0.1% over the window), output grows threefold
        points = tuple((1.0 + 0.00003 * s, 1.0, 1.0, 1.0 + s / 20) for s in steps)
        hist = HistoryView(steps=steps, loss=(1.0,) * 40, layers={"weight_norm": points})
        app, _ = static_app(cfg, profile_snapshot(cfg, [0.1] * 4, history=hist))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            panel = app.query_one(WeightPanel)
            lines_all = panel.render().plain.splitlines()
            lines = lines_all[1:5]
            sparks = [line.split(" ")[0] for line in lines]
            assert len(set(sparks[0])) == 1, sparks  # still: a flat line
            assert sparks[3][-1] == "█" and sparks[3][0] != "█"  # growth: it rises
            assert sparks[0][0] == sparks[3][0]  # both start at the same level: one scale
            assert "one scale" in panel.border_subtitle and lines_all[0] == "|W|/start ×0.99–1.3"
    run(go())


# -- 18. the picker -------------------------------------------------------------------------------------

def test_picker_single_click_highlights_double_click_loads():
    async def go():
        app, sessions = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("p")
            await pilot.pause(0.2)
            picker = app.screen
            options = picker.query_one("#preset-list")
            await pilot.click(options, offset=(3, 2))
            await pilot.pause(0.2)
            assert app.screen is picker and len(sessions) == 1  # still choosing
            chosen = options.get_option_at_index(options.highlighted).id
            await pilot.double_click(options, offset=(3, 2))
            await pilot.pause(0.3)
            assert app.screen is not picker and len(sessions) == 2
            assert app.preset_source == chosen
    run(go())


def test_picker_opens_a_toml_file_and_lists_it_while_it_runs(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\ntitle = "Forty sigmoid layers"\ndescription = "Mine."\n[model]\ndepth = 40\n')

    async def go():
        app, sessions = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("p")
            await pilot.pause(0.2)
            await pilot.click("#preset-file")
            await pilot.press(*str(tmp_path / "missing.toml"), "enter")
            await pilot.pause(0.2)
            assert isinstance(app.screen, PresetPicker)  # a bad path says why and stays open
            assert "cannot open" in str(app.screen.query_one("#preset-text").render())
            app.screen.query_one("#preset-file").value = str(path)
            await pilot.press("enter")
            await pilot.pause(0.3)
            assert len(sessions) == 2 and sessions[1].cfg.model.depth == 40
            assert app.preset_name == "mine"
            await pilot.press("p")
            await pilot.pause(0.2)
            options = app.screen.query_one("#preset-list")
            assert options.get_option_at_index(options.highlighted).id == str(path)
            assert "(running)" in str(options.get_option_at_index(0).prompt)
    run(go())


# -- 19. exported SVG ------------------------------------------------------------------------------------

def test_exported_svg_has_no_text_run_starting_or_ending_with_a_space(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def go():
        app, _ = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.2)
            await pilot.press("e")
            await pilot.pause(0.3)
            return app.last_export[0]

    svg = open(run(go()), encoding="utf-8").read()
    runs = re.findall(r"<text [^>]*textLength[^>]*>([^<]*)</text>", svg)
    assert runs and not [r for r in runs if r.startswith("&#160;") or r.endswith("&#160;")]
    words = " ".join(r.replace("&#160;", " ") for r in runs)
    assert "vanishing-sigmoid" in words and "activation" in words


def test_paused_before_the_first_step_says_which_key_starts_it():
    """After i at a non-finite pause the new run waits, paused, at step 0: the screen says space starts it."""
    async def go():
        cfg = load_config("orthogonal-deep-linear")
        snap = Snapshot(status="paused", step=0, config=cfg, pause_reason="user", version=1,
                        message="applied init orthogonal: init needs fresh weights, so training restarted")
        app, _ = static_app(cfg, snap)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            assert "space starts it" in app.query_one(GradientBars).render().plain
            assert "paused · space resumes" in app.query_one(StatusHeader).render().plain
    run(go())


def test_at_60x20_a_status_message_leaves_the_bars_their_rows():
    async def go():
        cfg = mlp_cfg()
        message = "applied activation leaky_relu at step 3,100; the weights carried over"
        app, _ = static_app(cfg, profile_snapshot(cfg, [0.1] * 21, message=message))
        async with app.run_test(size=(60, 20)) as pilot:
            await pilot.pause(0.3)
            assert len(app.query_one(StatusHeader).render().plain.splitlines()) == 3  # one line for the message
            assert not app.query_one("#mitigations").display
            rows, lines, _ = bar_rows(app)
            assert len(rows) >= 9, lines
            assert message in " ".join(app.query_one(AlertsPanel).content.plain.split())  # whole, beside the bars
    run(go())
