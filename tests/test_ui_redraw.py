"""Redrawing cheaply: the panels draw line by line and only what changed, and look the same.

The interface thread holds the GIL the training worker needs while it draws, so the
panels keep their lines (gradtui.ui.widgets._lines) and the app redraws the live figures
5 times a second while training runs. These tests check that the line-by-line drawing shows
exactly what Textual's own rendering of the same text shows, that a change repaints only the
lines it touches (and no layout when the size cannot change), and that the GIL switch
interval the interface sets is put back when it closes.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import asynccontextmanager
from dataclasses import replace

from test_ui_keys import make_app, mlp_cfg
from test_ui_screen import profile_snapshot, static_app
from textual.geometry import Region
from textual.visual import Visual, visualize
from textual.widgets import Static

import gradtui.ui as ui
from gradtui.ui.widgets import AlertsPanel, GradientBars, StatusHeader, WeightPanel
from gradtui.ui.widgets._lines import set_titles
from gradtui.ui.widgets.alerts import text_shape

GRAD = [1e-9, 3e-7, 2e-5, 1e-3, 5e-2, 0.1]


def run(coro):
    return asyncio.run(coro)


def cells(strip) -> list:
    """(character, colour, background, bold, italic) per cell: what the terminal shows."""
    out = []
    for segment in strip:
        style = segment.style
        look = None if style is None else (style.color, style.bgcolor, bool(style.bold), bool(style.italic))
        out.extend((ch, look) for ch in segment.text)
    return out


def textual_lines(widget) -> list:
    """The widget's text drawn by Textual's own pipeline, as it draws a widget's render()."""
    size = widget.content_region.size
    return Visual.to_strips(widget, visualize(widget, widget.render()), size.width, size.height, widget.visual_style)


@asynccontextmanager
async def screen_of(snap):
    """The app at 120x40 showing one hand-made Snapshot (no training), once drawn."""
    app, _ = static_app(snap.config, snap)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        yield app


def record_calls(obj, name: str) -> list:
    """Wrap ``obj.name`` so that each call's (args, kwargs) is kept, and still made."""
    calls, original = [], getattr(obj, name)

    def wrapper(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    setattr(obj, name, wrapper)
    return calls


def test_line_by_line_drawing_shows_what_textual_draws():
    cfg = mlp_cfg()
    snap = profile_snapshot(cfg, GRAD, status="paused", message="applied batch norm at step 10")

    async def go():
        async with screen_of(snap) as app:
            for widget in (app.query_one(GradientBars), app.query_one(StatusHeader), app.query_one(WeightPanel)):
                expected = textual_lines(widget)
                assert len(expected) >= 3, type(widget).__name__
                for y, strip in enumerate(expected):
                    assert cells(widget.render_line(y)) == cells(strip), (type(widget).__name__, y, strip.text)
    run(go())


def test_a_new_value_repaints_only_its_row():
    cfg = mlp_cfg()
    snap = profile_snapshot(cfg, GRAD, status="paused")

    async def go():
        async with screen_of(snap) as app:
            bars = app.query_one(GradientBars)
            before = bars.render().plain.splitlines()
            repainted = record_calls(bars, "refresh")
            changed = list(GRAD)
            changed[2] = 4e-5  # hidden.2's bar and value change, nothing else
            bars.show(replace(snap, latest={**snap.latest, "grad_norm": changed}, version=2))
            after = bars.render().plain.splitlines()
            rows = [y for y, (a, b) in enumerate(zip(before, after)) if a != b]
            assert len(rows) == 1 and "hidden.2" in after[rows[0]]
            width = bars.content_region.width
            assert repainted == [((Region(0, rows[0], width, 1),), {})]
            bars.show(replace(snap, latest={**snap.latest, "grad_norm": changed}, version=3))
            assert len(repainted) == 1  # the same picture again: nothing repainted
    run(go())


def test_an_unchanged_border_title_repaints_nothing():
    async def go():
        app, _ = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.1)
            bars = app.query_one(GradientBars)
            calls = record_calls(bars, "refresh")
            set_titles(bars, "a title")
            set_titles(bars, "a title")
            assert len(calls) == 1 and bars.border_title == "a title"
            set_titles(bars, subtitle="below")
            assert len(calls) == 2 and bars.border_subtitle == "below"
    run(go())


def test_alert_text_of_the_same_shape_needs_no_new_layout():
    from rich.text import Text

    assert text_shape(Text("measured 3.2e-09\nok")) == text_shape(Text("measured 7.5e-11\nok"))
    assert text_shape(Text("measured 3.2e-09\nok")) != text_shape(Text("measured 3e-09\nok"))
    assert text_shape(Text("a b")) != text_shape(Text("ab c"))  # the words wrap elsewhere
    cfg = mlp_cfg()
    snap = profile_snapshot(cfg, GRAD, status="paused")

    async def go():
        async with screen_of(snap) as app:
            panel = app.query_one(AlertsPanel)
            body = panel.query_one(Static)
            updates = record_calls(body, "update")
            deltas = [2e-9, 3e-7, 2e-5, 1e-3, 5e-2, 0.1]  # the measured ratio changes, its width does not
            panel.show(replace(snap, latest={**snap.latest, "delta_norm": deltas}, version=2))
            panel.show(replace(snap, alerts=(app.source.snapshot().alerts or ()), message="a new line of news",
                               version=3), message="a new line of news")
            assert [kwargs["layout"] for _, kwargs in updates] == [False, True]
            assert "a new line of news" in panel.content.plain
    run(go())


def test_the_interface_sets_a_short_switch_interval_and_puts_it_back(monkeypatch):
    seen = []
    monkeypatch.setattr("gradtui.ui.app.GradApp.run", lambda self: seen.append(sys.getswitchinterval()) or 0)
    previous = sys.getswitchinterval()
    assert ui.run_app(mlp_cfg(), source=object()) == 0
    assert seen == [ui.SWITCH_INTERVAL] and ui.SWITCH_INTERVAL < previous
    assert sys.getswitchinterval() == previous


def test_while_training_runs_the_header_redraws_five_times_a_second_and_a_pause_at_once():
    async def go():
        app, sessions = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            session = sessions[0]
            header = app.query_one(StatusHeader)
            calls = record_calls(header, "show")
            for _ in range(20):  # a new step every 50 ms for a second, polled at 10 fps
                session.step += 10
                session._publish()
                await pilot.pause(0.05)
            assert 1 <= len(calls) <= 7, len(calls)
            await pilot.press("space")
            await pilot.pause(0.1)
            assert "paused" in header.render().plain and calls[-1][0][0].step == session.step
    run(go())
