"""Sweep parts without a cluster: grid specs, the sigma_w^2 key, the theory overlay, the table,
the SVG, one cell's summary, and the import boundary (import gradtui never imports Dask)."""

import math
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import gradtui
from gradtui import theory
from gradtui.config import ConfigError
from gradtui.sweep import grid
from gradtui.sweep.cell import OUTCOMES, run_cell
from gradtui.sweep.heatmap import Heatmap
from gradtui.sweep.overlay import correlation_depth_scale, overlay_for
from gradtui.sweep.plan import make_plan, phase_diagram_base
from gradtui.sweep.svg import render
from gradtui.sweep.table import ResultsTable

TINY = {"model.width": 8, "data.samples": 256, "train.batch_size": 32, "model.depth": 3}


def tiny(**over):
    return gradtui.load_config("vanishing-tanh-standard").with_overrides({**TINY, **over})


@pytest.mark.parametrize("spec, values", [
    ("model.depth=10,20,40", (10, 20, 40)),
    ("model.depth=10:50:10", (10, 20, 30, 40, 50)),
    ("model.depth=10:45:10", (10, 20, 30, 40)),
    ("train.lr=0.001:1:x10", (0.001, 0.01, 0.1, 1.0)),
    ("sigma_w2=1:2:0.25", (1.0, 1.25, 1.5, 1.75, 2.0)),
    ("model.activation=tanh,relu", ("tanh", "relu")),
    ("model.batchnorm=true,false", (True, False)),
])
def test_grid_specs(spec, values):
    axis = grid.parse_axis(spec)
    assert axis.values == values and axis.key == spec.split("=")[0]


@pytest.mark.parametrize("spec, message", [
    ("model.dpth=1,2", "unknown key model.dpth; did you mean model.depth?"),
    ("model.depth=10:5:1", "empty range"),
    ("model.depth=", "has no values"),
    ("model.depth=1:5:0", "step must be above 0"),
    ("train.lr=1:0.1:x10", "empty range"),
    ("train.lr=0.1:1:x1", "factor above 1"),
    ("model.depth=1.5,2", "not a whole number"),
    ("model.activation=1:3:1", "needs a numeric key"),
    ("depth", "not KEY=SPEC"),
])
def test_grid_spec_errors(spec, message):
    with pytest.raises(ConfigError, match=message.replace("?", r"\?")):
        grid.parse_axis(spec)


def test_more_than_two_keys_and_repeats_are_refused():
    axes = [grid.parse_axis(s) for s in ("model.depth=2,3", "sigma_w2=1,2", "train.lr=0.1,0.2")]
    with pytest.raises(ConfigError, match="at most two"):
        grid.check_axes(axes)
    with pytest.raises(ConfigError, match="given twice"):
        grid.check_axes([axes[0], axes[0]])


def test_cells_are_the_cross_product_times_seeds():
    plan = make_plan(tiny(), ["model.depth=2,3,4", "sigma_w2=1,2"], seeds=2, steps=5, threshold=0.5, metric=None)
    assert len(plan.cells) == 3 * 2 * 2
    idents = {c.ident(plan.axes) for c in plan.cells}
    assert len(idents) == 12 and "model.depth=3,sigma_w2=2.0,seed=1" in idents


@pytest.mark.parametrize("init", ["standard", "lecun", "xavier", "he", "normal"])
def test_sigma_w2_key_gives_the_requested_weight_variance(init):
    """sigma_w2 sets init_gain so that theory's fan_in * Var(W) is the requested value, and the
    weights drawn have that variance (64 x 64 hidden matrices: 4096 draws, 5% tolerance)."""
    plan = make_plan(tiny(**{"model.init": init, "model.width": 64}), ["sigma_w2=0.5,2.5"], 1, 5, 0.5, None)
    for cell, want in zip(plan.cells, (0.5, 2.5)):
        cfg = plan.config(cell)
        assert theory.predict(cfg).sigma_w2 == pytest.approx(want, rel=1e-12)
        w = gradtui.Experiment(cfg).params()["hidden.1.W"].astype(np.float64)
        assert 64 * w.var() == pytest.approx(want, rel=0.05)


def test_bad_cell_value_is_bad_input_naming_the_cell():
    with pytest.raises(ConfigError, match="cell model.depth=0,seed=0: model.depth = 0 is not allowed"):
        make_plan(tiny(), ["model.depth=0,2"], 1, 5, 0.5, None)


def test_correlation_depth_scale_is_theorys_depth_scale_on_the_ordered_side():
    """Ordered phase: c* = 1, chi_c = chi_1(q*), so xi_c = -1/ln chi_1(q*) of gradtui.theory (1e-9)."""
    for s in (1.0, 1.3, 1.6):
        q = theory.fixed_point("tanh", s, 0.05)
        want = -1.0 / math.log(theory.chi1("tanh", s, q))
        assert correlation_depth_scale("tanh", s, 0.05) == pytest.approx(want, rel=1e-9)


def test_correlation_depth_scale_diverges_at_the_boundary_and_is_finite_in_chaos():
    """Schoenholz et al. 2017, tanh at sigma_b^2 = 0.05: chi_1 = 1 at sigma_w^2 = 1.76; xi_c grows
    without bound towards it from both sides, and in the chaotic phase chi_c < 1 (xi_c > 0) while
    chi_1 > 1; at sigma_w^2 = 4 xi_c is about 7 layers (the paper's figure 2: between 5 and 10)."""
    critical = theory.critical_sigma_w2("tanh", 0.05)
    assert critical == pytest.approx(1.76, abs=0.01)
    left = [correlation_depth_scale("tanh", critical - d, 0.05) for d in (0.3, 0.1, 0.01)]
    right = [correlation_depth_scale("tanh", critical + d, 0.05) for d in (0.3, 0.1, 0.01)]
    assert left == sorted(left) and right == sorted(right) and min(left[-1], right[-1]) > 100
    assert 5 < correlation_depth_scale("tanh", 4.0, 0.05) < 10
    ov = overlay_for(phase_diagram_base("tanh", gradtui.load_config), 1.0, 4.0)
    assert ov.critical == pytest.approx(critical) and ov.depth_curve(6)


def test_cell_summary_matches_a_plain_experiment():
    """run_cell's numbers are those of an ordinary Experiment of the same config (same seed)."""
    cfg = tiny(**{"train.eval_every": 10})
    row = run_cell(cfg, 25)
    assert set(OUTCOMES) <= set(row) and not row["error"]
    with threadpool_limits(limits=1):
        exp = gradtui.Experiment(cfg)
        first = exp.run(1)[0]
        losses = []
        while exp.step_count < 25:
            exp.run(min(10 - exp.step_count % 10, 25 - exp.step_count))
            losses.append(exp.evaluate())
    assert row["attenuation"] == float(first.delta_norm[0] / first.delta_norm[2])
    assert row["final_loss"] == losses[-1]["loss"] and row["accuracy"] == losses[-1]["accuracy"]
    assert row["best_loss"] == min(e["loss"] for e in losses)
    assert row["steps"] == 25 and row["trained"] == (row["final_loss"] <= 0.5 * math.log(3))


def test_nonfinite_and_failed_cells_are_results():
    blown = run_cell(tiny(**{"model.activation": "linear", "model.init_gain": 30.0, "train.lr": 1000.0, "model.depth": 6}), 200)
    assert blown["nonfinite"] is True and blown["trained"] is False and blown["steps"] < 200
    failed = run_cell(tiny(), 5, record_path="/nonexistent-dir/cell.jsonl")
    assert failed["trained"] is False and "RecordError" in failed["error"] and "does not exist" in failed["error"]


def test_table_resumes_and_cuts_a_half_written_line(tmp_path):
    table = ResultsTable(tmp_path, ["model.depth"])
    table.append({"cell": "model.depth=2,seed=0", "model.depth": 2, "seed": 0, "final_loss": 0.1 + 0.2, "trained": True})
    table.close()
    with open(table.path, "a") as f:
        f.write('"model.depth=3,seed=0",3,0,,tru')  # killed mid-write
    again = ResultsTable(tmp_path, ["model.depth"])
    assert list(again.finished()) == ["model.depth=2,seed=0"]
    again.append({"cell": "model.depth=3,seed=0", "model.depth": 3, "seed": 0, "trained": False})
    again.close()
    rows = again.finished()
    assert list(rows) == ["model.depth=2,seed=0", "model.depth=3,seed=0"]
    assert float(rows["model.depth=2,seed=0"]["final_loss"]) == 0.1 + 0.2  # repr round-trips exactly
    with pytest.raises(ValueError, match="not this sweep's"):
        ResultsTable(tmp_path, ["model.width"]).finished()


def test_svg_is_well_formed_with_cells_failures_and_theory():
    hm = Heatmap("accuracy", "sigma_w2", (1.0, 2.0, 3.0), "model.depth", (10, 20), (1.0, 2.0, 3.0))
    hm.add(1.0, 10, {"accuracy": 0.9})
    hm.add(2.0, 20, {"accuracy": None, "nonfinite": True})
    hm.add(3.0, 20, {"accuracy": 0.5, "error": "boom"})
    ov = overlay_for(phase_diagram_base("tanh", gradtui.load_config), 1.0, 3.0)
    root = ET.fromstring(render(hm, "title", ov))
    ns = "{http://www.w3.org/2000/svg}"
    fills = [r.get("fill") for r in root.iter(ns + "rect")]
    assert fills.count("#d9d9d9") >= 4  # 4 cells without a value, and the legend's swatch
    assert hm.colour(0.9) in fills
    assert len(root.findall(f".//{ns}polyline")) == 3  # depth = 1, 3, 6 xi_c
    assert any("χ₁ = 1" in (t.text or "") for t in root.iter(ns + "text"))
    assert sum(1 for p in root.iter(ns + "path") if p.get("stroke") == "#d62728") == 2  # two failed cells


def test_import_gradtui_and_its_cli_do_not_import_dask():
    code = ("import sys, gradtui, gradtui.cli; gradtui.cli.build_parsers(); "
            "bad = [m for m in ('dask', 'distributed', 'pandas') if m in sys.modules]; assert not bad, bad; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_terminal_view_shows_progress_pending_cells_and_theory_marks():
    from rich.console import Console

    from gradtui.sweep.live import Progress, SweepView

    hm = Heatmap("accuracy", "sigma_w2", (1.0, 1.5, 2.0, 4.0), "model.depth", (10, 20, 40), (1.0, 1.5, 2.0, 4.0), chance=0.5)
    hm.add(1.0, 10, {"accuracy": 0.99})
    hm.add(4.0, 40, {"accuracy": None, "error": "KilledWorker"})
    progress = Progress(total=12, skipped=0)
    progress.finished(False)
    progress.finished(True)
    ov = overlay_for(phase_diagram_base("tanh", gradtui.load_config), 1.0, 4.0)
    console = Console(width=100, record=True, color_system=None)
    console.print(SweepView(hm, "title", progress, ov))
    text = console.export_text()
    lines = text.splitlines()
    assert lines[0] == "title" and lines[1].startswith("  40 │") and lines[3].startswith("  10 │")
    assert lines[3].split("│")[1][:3] == "█3█"  # 0.99: upper half of [chance, 1]; 3 xi_c = 11 at sigma_w^2 = 1
    assert lines[1].split("│")[1][9:12] == " × "  # the failed cell
    assert lines[2].split("│")[1].split() == ["6", "1", "1", "3"]  # 6 xi_c = 22 at 1, 3 xi_c = 21 at 4
    assert "┃ χ₁ = 1 at σ_w² = 1.76" in text and "2/12 cells · 1 failed" in text
