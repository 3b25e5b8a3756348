"""Snapshot tests (pytest-textual-snapshot) of the main screen, the help screen and the preset picker.

The session is real but paused and deterministic: it starts paused, takes a fixed
number of single steps, and the test waits until the snapshot's step reaches it, so
no live training or timer changes the picture. Update after reviewing the report:
``pytest tests/test_ui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import time

import pytest

from gradtui.config import load_config
from gradtui.session import Session
from gradtui.ui.app import GradApp

STEPS = 40  # enough for the vanishing alert to rise (alerts.rise_steps = 20)


def paused_app() -> GradApp:
    return GradApp(load_config("vanishing-sigmoid"),
                   source_factory=lambda cfg: Session(cfg, start_paused=True))


async def settle(pilot, steps: int = STEPS, timeout: float = 60.0) -> None:
    """Wait for the kernels, take ``steps`` single steps, wait for them, let the app redraw."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    while app.source.snapshot().status == "compiling" and time.monotonic() < deadline:
        await pilot.pause(0.05)
    for _ in range(steps):
        app.source.step_once()
    while app.source.snapshot().step < steps and time.monotonic() < deadline:
        await pilot.pause(0.05)
    assert app.source.snapshot().step == steps
    await pilot.pause(0.1)
    app.redraw_now()
    await pilot.pause(0.1)


@pytest.mark.parametrize("size", [(120, 40), (80, 24), (70, 24), (60, 20)], ids=["120x40", "80x24", "70x24", "60x20"])
def test_main_screen(snap_compare, size):
    assert snap_compare(paused_app(), terminal_size=size, run_before=settle)


def test_help_screen(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.1)

    assert snap_compare(paused_app(), terminal_size=(120, 40), run_before=run_before)


def test_preset_picker(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("p")
        await pilot.pause(0.1)

    assert snap_compare(paused_app(), terminal_size=(80, 24), run_before=run_before)
