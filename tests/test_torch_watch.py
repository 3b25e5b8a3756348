"""gradtui.torch on real PyTorch models: each figure of the record against an independent computation."""

from __future__ import annotations

import json
import math
import os
import stat

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import gradtui.torch as gt  # noqa: E402
from gradtui import read_record  # noqa: E402
from gradtui.control_channel import ControlSender, control_path  # noqa: E402


def lines(path):
    return [json.loads(s) for s in open(path)]


def steps(path):
    return [o for o in lines(path) if o["type"] == "step"]


def mlp(inplace=False, act=nn.ReLU):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), act(inplace=inplace) if act is nn.ReLU else act(), nn.Linear(8, 8), nn.Sigmoid(),
                         nn.Linear(8, 3))


def data(n=16):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_norms_match_p_grad_and_the_update(tmp_path):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = data()
    path = tmp_path / "r.jsonl"
    w = gt.watch(model, opt, record=path, every=1)
    before = [p.detach().clone() for p in model.parameters()]
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    w.log(loss=loss)
    w.close()
    header = lines(path)[0]
    assert [e["name"] for e in header["layers"]] == ["0", "2", "4"]
    assert [e.get("activation") for e in header["layers"]] == ["relu", "sigmoid", None]
    assert header["layers"][0]["shapes"] == {"weight": [8, 6], "bias": [8]}
    (s,) = steps(path)
    assert s["loss"] == pytest.approx(loss.item())
    linears = [model[0], model[2], model[4]]
    for i, m in enumerate(linears):
        assert s["grad_norm"][i] == pytest.approx(m.weight.grad.norm().item(), rel=1e-5)
        assert s["weight_norm"][i] == pytest.approx(m.weight.norm().item(), rel=1e-5)
        b_w = before[2 * i]
        assert s["update_ratio"][i] == pytest.approx((m.weight - b_w).norm().item() / m.weight.norm().item(), rel=1e-4)
        assert s["param_norms"][f"{['0', '2', '4'][i]}.bias"][0] == pytest.approx(m.bias.grad.norm().item(), rel=1e-5)
    total = math.sqrt(sum(p.grad.norm().item() ** 2 for p in model.parameters()))
    assert s["grad_norm_total"] == pytest.approx(total, rel=1e-5)


def _outputs_and_grads(model, x, y, layers):
    outs = []
    hs = [m.register_forward_hook(lambda mod, i, o: outs.append(o)) for m in layers]
    loss = nn.functional.cross_entropy(model(x), y)
    for h in hs:
        h.remove()
    grads = torch.autograd.grad(loss, outs)
    return [g.norm().item() for g in grads]


def test_delta_norm_is_the_gradient_at_the_module_output_even_through_inplace_relu(tmp_path):
    x, y = data()
    reference = mlp(inplace=False)
    expected = _outputs_and_grads(reference, x, y, [reference[0], reference[2], reference[4]])
    model = mlp(inplace=True)  # same seed: same weights
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "r.jsonl"
    with gt.watch(model, opt, record=path, every=1) as w:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        w.log(loss=loss)
    (s,) = steps(path)
    assert s["delta_norm"] == pytest.approx(expected, rel=1e-5)
    assert all(v > 0 for v in expected)


def test_dead_and_saturated_fractions_match_a_direct_count(tmp_path):
    model = mlp()
    with torch.no_grad():
        model[0].bias[:3] = -50.0  # three ReLU units dead on every example
        model[2].weight.mul_(20.0)  # the sigmoid layer saturates
    x, y = data()
    h = model[1](model[0](x))
    s_out = model[3](model[2](h))
    dead = (h <= 0).all(dim=0).float().mean().item()
    sat = (s_out * (1 - s_out) < 0.0125).float().mean().item()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "r.jsonl"
    with gt.watch(model, opt, record=path, every=1) as w:
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        w.log(loss=loss)
    (s,) = steps(path)
    assert dead >= 3 / 8 and s["dead_fraction"][0] == pytest.approx(dead)
    assert sat > 0.2 and s["saturation"][1] == pytest.approx(sat)
    assert s["act_mean"][1] == pytest.approx(s_out.mean().item(), rel=1e-5)
    assert s["act_std"][1] == pytest.approx(s_out.std(correction=0).item(), rel=1e-5)


def _train(model, opt, x, y, n, watcher=None):
    for _ in range(n):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if watcher is not None:
            watcher.log(loss=loss)


@pytest.mark.parametrize("every", [1, 3])
def test_watching_never_changes_the_results_bitwise(tmp_path, every):
    x, y = data()
    plain = mlp(inplace=True)
    opt = torch.optim.Adam(plain.parameters(), lr=0.01)
    _train(plain, opt, x, y, 7)
    watched = mlp(inplace=True)
    opt2 = torch.optim.Adam(watched.parameters(), lr=0.01)
    with gt.watch(watched, opt2, record=tmp_path / "r.jsonl", every=every) as w:
        _train(watched, opt2, x, y, 7, w)
    for a, b in zip(plain.parameters(), watched.parameters()):
        assert torch.equal(a, b)
    assert len(steps(tmp_path / "r.jsonl")) == len(range(1, 8, every))


class Poison:
    """Turns a module's output into NaN from a given step on (a forward hook)."""

    def __init__(self, module, at_call):
        self.calls, self.at = 0, at_call
        module.register_forward_hook(self)

    def __call__(self, mod, inp, out):
        self.calls += 1
        return out * math.nan if self.calls >= self.at else out


def test_a_nan_injected_into_one_layer_is_named_there_and_skip_keeps_the_weights(tmp_path, capsys):
    model = mlp()
    Poison(model[2], at_call=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = data()
    path = tmp_path / "r.jsonl"
    w = gt.watch(model, opt, record=path, every=1, on_nonfinite="skip")
    _train(model, opt, x, y, 2, w)
    kept = [p.detach().clone() for p in model.parameters()]
    _train(model, opt, x, y, 1, w)
    w.close()
    for a, b in zip(kept, model.parameters()):
        assert torch.equal(a, b)  # the non-finite step was not applied
    s = steps(path)[-1]
    assert s["nonfinite"] and s["skipped"] and s["nonfinite_layer"] == "2"
    rec = read_record(path)
    assert rec.step_records()[-1].nonfinite_layer == "2"


def test_raise_names_the_module(tmp_path):
    model = mlp()
    Poison(model[4], at_call=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = data()
    with pytest.raises(gt.NonFiniteError, match="first at 4") as err:
        with gt.watch(model, opt, record=tmp_path / "r.jsonl", every=1, on_nonfinite="raise") as w:
            _train(model, opt, x, y, 3, w)
    assert err.value.layer == "4" and err.value.step == 2


def test_a_module_called_twice_and_tied_weights(tmp_path):
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(6, 8)
            self.shared = nn.Linear(8, 8)
            self.out = nn.Linear(8, 6)
            self.out.weight = self.inp.weight  # tied: (8, 6) used transposed
            self.act = nn.Tanh()

        def forward(self, x):
            h = self.act(self.inp(x))
            h = self.act(self.shared(h))
            h = self.act(self.shared(h))
            return nn.functional.linear(h, self.inp.weight.t())

    torch.manual_seed(0)
    model = Twice()
    x, _ = data()
    outs, tanh_outs = [], []
    h = model.shared.register_forward_hook(lambda m, i, o: outs.append(o))
    h2 = model.act.register_forward_hook(lambda m, i, o: tanh_outs.append(o.detach()))
    loss = model(x).pow(2).mean()
    h.remove()
    h2.remove()
    expected_delta = math.sqrt(sum(g.norm().item() ** 2 for g in torch.autograd.grad(loss, outs)))
    pooled = torch.cat([t.reshape(-1) for t in tanh_outs[1:]]).double()  # the two tanh calls after `shared`
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "r.jsonl"
    with gt.watch(model, opt, record=path, every=1) as w:
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        w.log(loss=loss)
    header, (s,) = lines(path)[0], steps(path)
    names = [e["name"] for e in header["layers"]]
    assert names == ["inp", "shared", "out"]
    i = names.index("shared")
    assert s["grad_norm"][i] == pytest.approx(model.shared.weight.grad.norm().item(), rel=1e-5)
    assert s["delta_norm"][i] == pytest.approx(expected_delta, rel=1e-5)
    assert s["act_mean"][i] == pytest.approx(pooled.mean().item(), rel=1e-5)  # over both calls
    assert s["act_std"][i] == pytest.approx(pooled.std(correction=0).item(), rel=1e-5)
    assert s["saturation"][i] == pytest.approx((1 - pooled ** 2 < 0.05).double().mean().item())
    assert s["grad_norm"][0] == pytest.approx(model.inp.weight.grad.norm().item(), rel=1e-5)
    distinct = [p for p in {id(p): p for p in model.parameters()}.values() if p.grad is not None]
    assert s["grad_norm_total"] == pytest.approx(math.sqrt(sum(p.grad.norm().item() ** 2 for p in distinct)), rel=1e-5)


def test_torch_compile_records_the_norms_and_says_what_it_cannot(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    compiled = torch.compile(model, backend="eager")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(8, 4)
    path = tmp_path / "r.jsonl"
    with gt.watch(compiled, opt, record=path, every=1) as w:
        for _ in range(2):
            loss = compiled(x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            w.log(loss=loss)
    header, s = lines(path)[0], steps(path)
    assert "torch.compile" in header["measured"] and "delta_norm" in header["measured"]
    assert s[-1]["grad_norm"][0] == pytest.approx(model[0].weight.grad.norm().item(), rel=1e-5)
    assert s[-1]["delta_norm"] == ["nan", "nan"]


def test_live_remedies_arrive_and_act(tmp_path):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.4)
    x, y = data()
    path = tmp_path / "r.jsonl"
    w = gt.watch(model, opt, record=path, every=1, clip_norm=0.05)
    ctl = control_path(path)
    assert stat.S_IMODE(os.stat(ctl).st_mode) == 0o600
    sender = ControlSender(ctl)
    _train(model, opt, x, y, 1, w)
    sender.send("-")
    sender.send("c")
    _train(model, opt, x, y, 1, w)  # the commands act on this step's update
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)
    _train(model, opt, x, y, 1, w)
    total = math.sqrt(sum(p.grad.norm().item() ** 2 for p in model.parameters()))
    assert total <= 0.05 * (1 + 1e-5)
    w.close()
    assert not ctl.exists()
    events = [o for o in lines(path) if o.get("event") == "change"]
    assert [e["changed"] for e in events] == [["train.lr"], ["train.clip"]]
    assert events[0]["overrides"]["train.lr"] == pytest.approx(0.2) and events[0]["step"] == 1  # after step 1
    assert all(s["loss"] != "nan" for s in steps(path))  # a change never cuts a step's line short of its loss
    assert steps(path)[-1]["clipped"] is True and steps(path)[-1]["grad_norm_total"] > 0.05


def test_the_control_file_refuses_others(tmp_path):
    ctl = tmp_path / "r.jsonl.control"
    ctl.write_text("")
    os.chmod(ctl, 0o666)
    with pytest.raises(OSError, match="0600"):
        ControlSender(ctl)


def test_bad_arguments_say_what_is_allowed(tmp_path):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="record, skip, raise"):
        gt.watch(model, opt, record=tmp_path / "r.jsonl", on_nonfinite="ignore")
    with pytest.raises(ValueError, match="every"):
        gt.watch(model, opt, record=tmp_path / "r.jsonl", every=0)


def test_mixed_precision_norms_are_float32(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.Linear(8, 3)).to(torch.bfloat16)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = data()
    path = tmp_path / "r.jsonl"
    with gt.watch(model, opt, record=path, every=1) as w:
        _train(model, opt, x.to(torch.bfloat16), y, 1, w)
    (s,) = steps(path)
    assert s["grad_norm"][0] == pytest.approx(model[0].weight.grad.float().norm().item(), rel=1e-5)
    assert s["weight_norm"][1] == pytest.approx(model[2].weight.float().norm().item(), rel=1e-5)
    assert lines(path)[0]["layers"][0]["activation"] == "gelu" and 0 <= s["saturation"][0] <= 1


def test_recurrent_layers_get_the_per_time_step_gradient(tmp_path):
    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(3, 5, batch_first=True)
            self.head = nn.Linear(5, 2)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    torch.manual_seed(0)
    model = Seq()
    x = torch.randn(4, 6, 3)
    xg = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(model(xg).pow(2).mean(), xg)
    expected = g.norm(dim=(0, 2)).tolist()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "r.jsonl"
    with gt.watch(model, opt, record=path, every=1) as w:
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        w.log(loss=loss)
    header, (s,) = lines(path)[0], steps(path)
    assert header["layers"][0]["kind"] == "recurrent" and header["layers"][0]["cell"] == "rnn"
    assert s["time_delta_norm"] == pytest.approx(expected, rel=1e-5)
    assert 0 < expected[0] < expected[-1]  # the error reaches every step, less the further back


def test_activation_functions_called_outside_modules_are_seen(tmp_path):
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 3)

        def forward(self, x):
            return self.c(torch.tanh(self.b(nn.functional.relu(self.a(x)))))

    torch.manual_seed(0)
    model = Functional()
    with torch.no_grad():
        model.a.bias[:2] = -50.0  # two ReLU units dead on every example
        model.b.weight.mul_(10.0)  # the tanh saturates
    x, y = data()
    h = nn.functional.relu(model.a(x))
    t = torch.tanh(model.b(h))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "r.jsonl"
    with gt.watch(model, opt, record=path, every=1) as w:
        _train(model, opt, x, y, 2, w)
    header, s = lines(path)[0], steps(path)[0]
    assert [e.get("activation") for e in header["layers"]] == ["relu", "tanh", None]
    assert s["dead_fraction"][0] == pytest.approx((h <= 0).all(dim=0).float().mean().item()) and s["dead_fraction"][0] >= 2 / 8
    assert s["saturation"][1] == pytest.approx((1 - t * t < 0.05).float().mean().item()) and s["saturation"][1] > 0.2
    assert s["act_mean"][1] == pytest.approx(t.mean().item(), rel=1e-5)
    assert s["act_std"][1] == pytest.approx(t.std(correction=0).item(), rel=1e-5)
    assert s["dead_fraction"][2] == "nan"  # the read-out has no activation: not seen
