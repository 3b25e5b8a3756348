"""The examples run as a user runs them, and `gradtui watch` (FollowSource) diagnoses their records;
the viewer's live remedies reach a running gradtui.torch writer."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import gradtui.torch as gt  # noqa: E402
from gradtui.sources.follow import FollowSource  # noqa: E402
from gradtui.sources.protocol import FOLLOW, FOLLOW_CONTROL  # noqa: E402
from gradtui.ui.widgets.mitigations import remote_rows  # noqa: E402

from conftest import wait_for  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def write_example(tmp_path, script, *args):
    record = tmp_path / (Path(script).stem + ".jsonl")
    subprocess.run([sys.executable, str(EXAMPLES / script), "--record", str(record), "--every", "1", *args],
                   check=True, timeout=300, capture_output=True)
    return record


def follow_to_end(record):
    source = FollowSource(record)
    source.poll_once()
    return source.snapshot()


def run_example(tmp_path, script, *args):
    return follow_to_end(write_example(tmp_path, script, *args))


@pytest.fixture(scope="module")
def sigmoid_record(tmp_path_factory):
    """The sigmoid MLP example's record (60 steps, every one measured), written by the script."""
    return write_example(tmp_path_factory.mktemp("sigmoid"), "vanishing_sigmoid_mlp.py", "--steps", "60")


def test_the_sigmoid_mlp_example_raises_vanishing_with_pytorch_code(sigmoid_record):
    snap = follow_to_end(sigmoid_record)
    assert snap.status == "finished"
    (alert,) = [a for a in snap.alerts if a.kind == "vanishing"]
    assert alert.layers == ("0", "22") and "sigmoid" in alert.message
    assert alert.message.startswith("model[0] gets") and "reaching model[22]" in alert.message  # named as in the code
    codes = [r.code for r in alert.remedies]
    assert any("nn.ReLU()" in c and "nn.Sigmoid()" in c for c in codes)
    assert any("nn.BatchNorm1d(32)" in c and "model[0]" in c for c in codes)


def test_watching_a_pytorch_record_needs_no_torch(sigmoid_record):
    """`import gradtui` and the viewer's side (follow, diagnose, PyTorch remedies, the control
    channel) run with torch made unimportable: only gradtui.torch, in the training process, needs it."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "import gradtui, gradtui.cli, gradtui.control_channel\n"
            "from gradtui.sources.follow import FollowSource\n"
            "source = FollowSource(sys.argv[1]); source.poll_once()\n"
            "(alert,) = [a for a in source.snapshot().alerts if a.kind == 'vanishing']\n"
            "print(any('nn.ReLU()' in r.code for r in alert.remedies))")
    out = subprocess.run([sys.executable, "-c", code, str(sigmoid_record)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr
    plain = subprocess.run([sys.executable, "-c", "import sys, gradtui; print('torch' in sys.modules)"],
                           capture_output=True, text=True, timeout=60)
    assert plain.stdout.strip() == "False", plain.stderr


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
    source.toggle_pause()  # space: the next optimizer.step() holds the training process
    held = threading.Thread(target=step)
    held.start()
    assert wait_for(lambda: (source.poll_once(), source.snapshot().status == "paused")[1], 30)
    assert "training paused after step 2" in source.snapshot().message and held.is_alive()
    before = [p.detach().clone() for p in model.parameters()]
    time.sleep(0.3)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # no update while paused
    source.toggle_pause()
    held.join(30)
    assert not held.is_alive() and w.steps == 3
    source.poll_once()
    assert source.snapshot().status == "running"
    w.close()
    source.poll_once()
    assert source.capabilities is FOLLOW  # the writer ended: nothing to send to
    assert remote_rows(source.remote_state)[0][:2] == ("training", "ended")  # the settings panel says so


def test_long_module_paths_leave_room_for_the_bars_at_80x24(tmp_path):
    """A Transformer's module paths (encoder.layers.0.self_attn.out_proj) are cut from the left
    so that every row still shows its bar in the 80x24 screen of `gradtui watch`."""
    import asyncio

    from gradtui.ui.app import GradApp

    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
    model = nn.Sequential(nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    path = tmp_path / "run.jsonl"
    with gt.watch(model, opt, record=path, every=1) as w:
        for _ in range(3):
            loss = model(torch.randn(4, 5, 16)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            w.log(loss=loss)
    src = FollowSource(path)
    app = GradApp(None, source=src, name="watch run.jsonl")

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            assert await asyncio.to_thread(wait_for, lambda: src.snapshot().status == "finished", 20)
            app.redraw_now()
            await pilot.pause()
            rows = app.panels.bars.render().plain.splitlines()[1:]
            drawn = [r for r in rows if "e-" in r or "e+" in r]
            assert drawn and all("█" in r for r in drawn) and any(r.startswith("…") for r in drawn), rows

    asyncio.run(go())
