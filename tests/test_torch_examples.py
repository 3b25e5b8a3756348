"""The examples run as a user runs them, and `gradtui watch` (FollowSource) diagnoses their records;
the viewer's live remedies reach a running gradtui.torch writer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import gradtui.torch as gt  # noqa: E402
from gradtui.sources.follow import FollowSource  # noqa: E402
from gradtui.sources.protocol import FOLLOW, FOLLOW_CONTROL  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(tmp_path, script, *args):
    record = tmp_path / (Path(script).stem + ".jsonl")
    subprocess.run([sys.executable, str(EXAMPLES / script), "--record", str(record), "--every", "1", *args],
                   check=True, timeout=300, capture_output=True)
    source = FollowSource(record)
    source.poll_once()
    return source.snapshot()


def test_the_sigmoid_mlp_example_raises_vanishing_with_pytorch_code(tmp_path):
    snap = run_example(tmp_path, "vanishing_sigmoid_mlp.py", "--steps", "60")
    assert snap.status == "finished"
    (alert,) = [a for a in snap.alerts if a.kind == "vanishing"]
    assert alert.layers == ("0", "22") and "sigmoid" in alert.message
    codes = [r.code for r in alert.remedies]
    assert any("nn.ReLU()" in c and "nn.Sigmoid()" in c for c in codes)
    assert any("nn.BatchNorm1d(32)" in c and "model[0]" in c for c in codes)


def test_the_residual_cnn_example_raises_nothing(tmp_path):
    snap = run_example(tmp_path, "deep_cnn.py", "--residual", "--steps", "80")
    assert snap.status == "finished" and snap.step == 80
    assert snap.alerts == ()
    assert len(snap.layer_names) == 18 and snap.layer_names[1] == "2.conv1"


def test_the_viewer_sends_live_remedies_to_the_writer(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "run.jsonl"
    x = torch.randn(16, 4)

    def step():
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        w.log(loss=loss)

    w = gt.watch(model, opt, record=path, every=1)
    step()
    source = FollowSource(path)
    source.poll_once()
    assert source.capabilities is FOLLOW_CONTROL
    assert source.remote_state["train.lr"] == pytest.approx(0.1)
    source.remote("+")
    source.remote("c")
    step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2) and w.clip
    source.poll_once()
    assert source.remote_state["train.lr"] == pytest.approx(0.2) and source.remote_state["train.clip"] == "norm 1"
    w.close()
    source.poll_once()
    assert source.capabilities is FOLLOW  # the writer ended: nothing to send to
