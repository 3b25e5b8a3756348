"""The shipped presets: each loads, validates, and trains 50 steps headless; the list the
CLI prints is exactly the shipped files; the preset page (docs/presets.md) is current."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gradtui
from gradtui.config import load_config
from gradtui.config.presets_doc import render_markdown
from gradtui.engine import Experiment

from conftest import EXPLODING_PRESETS

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.stem for p in (ROOT / "presets").glob("*.toml"))


def test_preset_names_are_the_shipped_files():
    assert SHIPPED, "no presets shipped"
    assert gradtui.preset_names() == SHIPPED
    assert "vanishing-sigmoid" in SHIPPED


def test_cli_presets_lists_exactly_the_shipped_files():
    out = subprocess.run([sys.executable, "-m", "gradtui.cli", "presets"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    listed = set(re.findall(r"^\s*([a-z0-9][a-z0-9-]*[a-z0-9])(?: \(default\))?\s*[│|]", out.stdout, re.M))
    assert listed == set(SHIPPED), out.stdout


@pytest.mark.parametrize("name", SHIPPED)
def test_preset_loads_and_describes_itself(name):
    cfg = load_config(name)
    assert cfg.name == name
    assert cfg.title.strip() and cfg.description.strip()
    sentences = [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z(])", " ".join(cfg.description.split())) if s]
    assert 2 <= len(sentences) <= 6, f"{name}: {len(sentences)} sentences"
    by_path = load_config(ROOT / "presets" / f"{name}.toml")  # also loadable by path
    assert by_path.to_dict() == cfg.to_dict()


@pytest.mark.parametrize("name", SHIPPED)
def test_preset_trains_50_steps_headless(name):
    cfg = load_config(name)
    exp = Experiment(cfg)
    finite = 0
    for _ in range(50):
        rec = exp.step()
        finite += not rec.nonfinite
        assert len(rec.grad_norm) == len(exp.layer_names)
    assert exp.step_count == 50
    # exploding presets may overflow; every other preset stays finite
    if name not in EXPLODING_PRESETS:
        assert finite == 50 and math.isfinite(rec.loss)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_preset_says_what_to_press(name):
    assert load_config(name).press.strip(), f"{name}.toml has no press = \"...\" line"


def test_preset_page_is_current():
    current = (ROOT / "docs" / "presets.md").read_text()
    assert current == render_markdown(), "docs/presets.md is stale: run python -m gradtui.config.presets_doc > docs/presets.md"
