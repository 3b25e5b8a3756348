"""The record as a public contract: the format document, a hand-written record of a model gradtui
does not have, objects from the reader, configs that load back from a header, exact reruns."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import numpy as np
import pytest

import gradtui
from gradtui.engine import Experiment
from gradtui.engine.record import PER_LAYER, STATISTICS
from gradtui.record import FORMAT_VERSION, RecordError, RecordWriter, plain, statistics_table
from gradtui.sources.replay import ReplaySource
from gradtui.ui.app import GradApp

from conftest import EXPLODING_PRESETS, gradtui_cli, record_live_run, tiny

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "record-format.md"


def test_format_document_is_current():
    text = DOC.read_text()
    assert f"# The gradtui record format (version {FORMAT_VERSION})" in text
    assert statistics_table() in text, "docs/record-format.md's statistics table is stale (gradtui.record.statistics_table)"
    assert all(f"`{s.name}`" in text for s in STATISTICS)


def write_conv_record(path: Path, steps: int = 60) -> None:
    """A record written from docs/record-format.md alone (json only, no gradtui code): a 3-layer
    conv net whose first layer gets a millionth of the gradient of the last hidden layer."""
    header = {"type": "header", "format": 2, "producer": "handwritten-conv 0.1",
              "layers": [{"name": "conv1", "kind": "conv", "activation": "sigmoid", "fan_in": 27, "fan_out": 8},
                         {"name": "conv2", "kind": "conv", "activation": "sigmoid", "fan_in": 72, "fan_out": 8},
                         {"name": "fc", "kind": "output", "fan_in": 128, "fan_out": 10}],
              "alerts": {"rise_steps": 5, "clear_steps": 10}}
    lines = [header]
    for step in range(1, steps + 1):
        lines.append({"type": "step", "step": step, "loss": 2.3 - 1e-5 * step,
                      "grad_norm": [1e-7, 0.1, 0.5], "weight_norm": [3.0, 3.0, 2.0],
                      "update_ratio": [1e-9, 1e-4, 1e-3], "dead_fraction": [0, 0, 0], "saturation": [0.1, 0.1, 0]})
        if step % 20 == 0:
            lines.append({"type": "event", "event": "eval", "step": step, "loss": 2.3, "accuracy": 0.1})
    lines.append({"type": "event", "event": "end", "step": steps, "reason": "finished"})
    path.write_text("".join(json.dumps(obj) + "\n" for obj in lines))


def test_hand_written_conv_record_replays_and_raises_vanishing(tmp_path):
    path = tmp_path / "conv.jsonl"
    write_conv_record(path)
    rec = gradtui.read_record(path)
    assert [layer.kind for layer in rec.layers] == ["conv", "conv", "output"] and rec.problems == []
    assert not rec.has_config
    with pytest.raises(gradtui.ConfigError, match="no gradtui config"):
        rec.config()
    src = ReplaySource(path, start_paused=True).start()
    src.seek_step(4)
    assert src.snapshot().alerts == ()  # rise_steps 5 from the header
    src.seek_to(-1)
    snap = src.snapshot()
    assert snap.config is None and snap.status == "finished"
    (alert,) = snap.alerts
    assert alert.kind == "vanishing" and alert.layers == ("conv1", "conv2") and alert.step == 5
    assert "conv1 gets 1e-06 of the gradient reaching conv2" in alert.message and "sigmoid" in alert.message
    assert alert.remedies == ()  # remedies are config changes: there is no gradtui config to change
    assert snap.history.eval_steps == (20, 40, 60) and snap.position == "step 60 / 60"

    async def screen():  # the interface on it, at 80x24: no config, the layer table instead
        app = GradApp(None, source=ReplaySource(path, start_paused=True), name="replay conv.jsonl")
        async with app.run_test(size=(80, 24)) as pilot:
            app.source.seek_to(-1)
            app.redraw_now()
            await pilot.pause()
            return app.panels.header.render().plain, app.panels.alerts.content.plain, app.panels.bars.render().plain

    header, alerts, bars = asyncio.run(screen())
    assert "3 layers: conv sigmoid 27→8" in header and "step 60 / 60" in header
    assert "vanishing: conv1 gets 1e-06" in alerts.replace("\n", " ") and "conv1" in bars and "fc" in bars


def test_reader_gives_objects_and_a_dataframe(tmp_path):
    path = tmp_path / "run.jsonl"
    live = record_live_run(tiny(), path, 60)
    rec = gradtui.read_record(path)
    assert rec.format == FORMAT_VERSION and rec.header["producer"].startswith("gradtui ")
    assert [(layer.name, layer.kind, layer.activation) for layer in rec.layers] == [
        ("hidden.0", "linear", "sigmoid"), ("hidden.1", "linear", "sigmoid"), ("hidden.2", "linear", "sigmoid"), ("output", "output", None)]
    assert rec.layers[0].fan_in == 2 and rec.layers[0].fan_out == 8
    steps = rec.step_records()
    assert len(steps) == 60 and isinstance(steps[-1], gradtui.StepRecord)
    assert steps[-1].grad_norm.tolist() == list(live.latest["grad_norm"])
    again = gradtui.StepRecord.from_dict(steps[-1].to_dict())
    for name in PER_LAYER:
        np.testing.assert_array_equal(getattr(again, name), getattr(steps[-1], name))
    raised = [a for a in rec.alerts() if a.what == "raised"]
    assert raised and raised[0].alert.kind == live.raised[0][1].kind and raised[0].alert.message == live.raised[0][1].message
    assert raised[0].alert.remedies == live.raised[0][1].remedies
    df = rec.to_pandas()
    assert len(df) == 60 and df["loss"].tolist() == rec.series("loss")
    assert df["grad_norm/hidden.0"].iloc[-1] == steps[-1].grad_norm[0]
    assert {f"{s}/output" for s in PER_LAYER} <= set(df.columns)


def test_step_from_dict_names_what_is_wrong():
    with pytest.raises(ValueError, match="'loss'"):
        gradtui.StepRecord.from_dict({"step": 1, "grad_norm": [1.0]})
    with pytest.raises(ValueError, match="delta_norm has 1 values for 2 layers"):
        gradtui.StepRecord.from_dict({"step": 1, "loss": 1, "grad_norm": [1.0, 2.0], "delta_norm": [1.0]})
    rec = gradtui.StepRecord.from_dict({"step": 3, "loss": "nan", "grad_norm": [3.0, 4.0]})
    assert math.isnan(rec.loss) and rec.grad_norm_total == 5.0 and math.isnan(rec.weight_norm[0])


def test_export_carries_the_full_step_schema(tmp_path):
    from gradtui.session import Session

    s = Session(tiny(), max_steps=30).start()
    assert s.wait(120)
    exported = s.export(tmp_path)
    s.stop()
    rec = gradtui.read_record(exported)
    assert rec.format == FORMAT_VERSION and rec.header["export"] is True
    line = rec.steps[-1]
    assert set(PER_LAYER) <= set(line) and {"clipped", "nonfinite", "grad_norm_total"} <= set(line)
    assert all(len(line[name]) == 4 for name in PER_LAYER)
    assert rec.config() == s.config or rec.config().to_dict() == s.config.to_dict()




def losses_of(cfg, steps: int = 100) -> list:
    """The losses of up to ``steps`` steps; a run stops at its first non-finite step, as the
    trainer pauses there (exploding-init, orthogonal-deep-linear and rnn-exploding do)."""
    exp = Experiment(cfg)
    out = []
    while len(out) < steps:
        records = exp.run(steps - len(out))
        out += [r.loss for r in records]
        if records[-1].nonfinite:
            break
    return out, exp


def round_trip_steps(cfg) -> int:
    """100 steps; 30 for a Transformer, whose steps take 10-100 times longer (30 Adam steps
    already move every weight, so a config that did not round-trip would show)."""
    return 30 if cfg.model.kind == "transformer" else 100


@pytest.mark.parametrize("preset", gradtui.preset_names())
def test_header_config_reruns_the_recorded_losses(preset, tmp_path):
    """Round trip for every preset: the recorded run's header -> load_config -> a new run whose
    losses (100, or :func:`round_trip_steps`) equal the recorded ones, bit for bit."""
    path = tmp_path / "run.jsonl"
    cfg = gradtui.load_config(preset)
    steps = round_trip_steps(cfg)
    losses, exp = losses_of(cfg, steps)
    with RecordWriter(path) as w:
        w.header(cfg, exp.layers)
        for step, loss in enumerate(losses, 1):
            w.step(plain({"step": step, "loss": loss, "grad_norm": [1.0] * len(exp.layers)}))
    again = gradtui.load_config(str(path))
    assert again.to_dict() == cfg.to_dict()
    recorded = gradtui.read_record(path).series("loss")
    rerun, _ = losses_of(again, steps)
    assert len(recorded) == (steps if preset not in EXPLODING_PRESETS else len(recorded)) and len(recorded) >= 2
    np.testing.assert_array_equal(rerun, recorded)  # NaN where the recorded run had NaN


def test_run_and_check_take_a_record(tmp_path):
    first = tmp_path / "first.jsonl"
    record_live_run(tiny(**{"train.seed": 7}), first, 40)
    out = gradtui_cli("check", first)
    assert out.returncode == 0 and "seed = 7" in out.stdout
    second = tmp_path / "second.jsonl"
    out = gradtui_cli("run", first, "--steps", "40", "--quiet", "--record", second, timeout=300)
    assert out.returncode == 0, out.stderr
    # `gradtui run` trains on NumPy until the kernels it needs are compiled (tier "auto"); the two
    # tiers agree to float32 rounding (tests/test_tiers.py), the same tier bit for bit
    rerun, original = gradtui.read_record(second).series("loss"), gradtui.read_record(first).series("loss")
    assert len(rerun) == len(original) == 40 and np.allclose(rerun, original, rtol=1e-5, atol=0), (rerun, original)
    handwritten = tmp_path / "conv.jsonl"
    write_conv_record(handwritten)
    out = gradtui_cli("run", handwritten)
    assert out.returncode == 2 and "no gradtui config" in out.stderr and "Traceback" not in out.stderr


def test_replay_reads_damaged_records_like_the_reader(tmp_path):
    path = tmp_path / "conv.jsonl"
    write_conv_record(path)
    data = path.read_bytes()
    path.write_bytes(data[:-20])  # a writer killed in the middle of its last line
    src = ReplaySource(path)
    assert src.record.problems == gradtui.read_record(path).problems and "truncated" in src.record.problems[0]
    lines = data.split(b"\n")
    lines[5] = b"{not json"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(RecordError, match="line 6 is not valid JSON"):
        ReplaySource(path)
    out = gradtui_cli("replay", path)
    assert out.returncode == 2 and "line 6 is not valid JSON" in out.stderr and "Traceback" not in out.stderr
    out = gradtui_cli("replay", tmp_path / "missing.jsonl")
    assert out.returncode == 2 and "gradtui watch" in out.stderr
