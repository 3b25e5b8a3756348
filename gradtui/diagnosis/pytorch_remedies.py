"""Remedies for a PyTorch model gradtui did not build, phrased as the PyTorch code to change.

A record written by :mod:`gradtui.torch` (header ``"framework": "pytorch"``) has no gradtui
config to change; its alerts name code instead, specific to the layers of its layer table
(their module paths, kinds, activations and sizes) and to the optimizer's learning rate.
:data:`CODE_REMEDIES` is the one list: the diagnosis builds remedies from it and the help
screen explains each. A remedy the viewer can also apply live (clipping, a lower learning
rate) carries the same config-style change as gradtui's own, so its key is shown.

Only this module's text mentions torch; it never imports it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gradtui.diagnosis.alert import Remedy
from gradtui.diagnosis.remedies import RELU_FAMILY, SATURATING


@dataclass(frozen=True)
class CodeRemedy:
    """One kind of code change: its name, the alerts it answers, and why it helps (help screen)."""

    name: str
    kinds: tuple
    why: str


CODE_REMEDIES: tuple[CodeRemedy, ...] = (
    CodeRemedy("kaiming_init", ("vanishing", "dead"), "nn.init.kaiming_normal_(layer.weight, nonlinearity=\"relu\") on the linear and conv layers "
               "followed by ReLU: weights of variance 2/fan_in keep the gradient's size layer to layer (He et al. 2015)."),
    CodeRemedy("xavier_init", ("vanishing", "saturation"), "nn.init.xavier_normal_(layer.weight, gain=nn.init.calculate_gain(\"tanh\")) for layers "
               "followed by tanh or sigmoid: variance 1/fan_in keeps pre-activations inside the slope (Glorot & Bengio 2010)."),
    CodeRemedy("relu", ("vanishing", "saturation"), "nn.ReLU() (or nn.LeakyReLU(0.01)) in place of nn.Sigmoid()/nn.Tanh(): slope 1 for positive "
               "inputs and no flat tails, where a sigmoid passes at most a quarter of the gradient."),
    CodeRemedy("normalise", ("vanishing", "saturation", "exploding", "nonfinite"), "nn.BatchNorm1d/2d (or nn.LayerNorm for sequences) after the named "
               "layer: re-centres and re-scales its output on every batch, so later layers see inputs of a steady size."),
    CodeRemedy("residual", ("vanishing",), "x = x + block(x) around the deep part: the skip path carries the gradient past every layer (He et al. 2016)."),
    CodeRemedy("adam", ("vanishing",), "torch.optim.Adam(model.parameters(), lr=1e-3) in place of SGD: per-parameter step sizes let layers with tiny "
               "gradients still move; it does not remove the cause."),
    CodeRemedy("lstm", ("vanishing", "vanishing_time"), "nn.LSTM or nn.GRU in place of nn.RNN: the gates keep an additive memory path, so the error "
               "reaches early time steps."),
    CodeRemedy("clip", ("exploding", "nonfinite", "vanishing_time"), "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0) between "
               "loss.backward() and optimizer.step(): caps every step's length whatever the gradient's size (c clips live)."),
    CodeRemedy("lower_lr", ("exploding", "nonfinite", "dead"), "a lower learning rate (the suggested value is a tenth of the current one; - halves it "
               "live): smaller steps stop the weights from overshooting and growing."),
    CodeRemedy("warmup", ("exploding", "nonfinite"), "torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=1000) for models "
               "with attention: Post-LN Transformers need a learning-rate warmup (Xiong et al. 2020)."),
    CodeRemedy("leaky_relu", ("dead",), "nn.LeakyReLU(0.01) in place of nn.ReLU(): a small slope below zero, so no unit can die."),
)
BY_NAME = {r.name: r for r in CODE_REMEDIES}


_CLASS = {"conv": "nn.Conv2d", "linear": "nn.Linear"}


def access(name: str) -> str:
    """Python that reaches a module from ``model``: "encoder.layers.3.linear1" -> model.encoder.layers[3].linear1."""
    out = "model"
    for part in name.split("."):
        out += f"[{part}]" if part.isdigit() else (f".{part}" if re.fullmatch(r"[A-Za-z_]\w*", part) else f".get_submodule({part!r})")
    return out


def _norm_layer(layer) -> str:
    n = layer.fan_out or "N"
    if layer.kind == "conv":
        return f"nn.BatchNorm2d({n})"
    if layer.kind in ("attention", "recurrent", "embedding"):
        return f"nn.LayerNorm({n})"
    return f"nn.BatchNorm1d({n})"


def _list(layers, limit: int = 3) -> str:
    names = [access(layer.name) for layer in layers]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def code_remedies(kind: str, facts, named: tuple = ()) -> tuple[Remedy, ...]:
    """The code changes for one alert kind on the model of ``facts`` (ModelFacts with its layer
    table and learning rate); ``named`` the layers the alert names."""
    layers = tuple(facts.layers)
    by_name = {layer.name: layer for layer in layers}
    first = next((by_name[n] for n in named if n in by_name), layers[0] if layers else None)
    weighted = [la for la in layers if la.kind in ("linear", "conv")]
    relu_fed = [la for la in weighted if la.activation in RELU_FAMILY + ("relu6",)]
    sat_fed = [la for la in weighted if la.activation in SATURATING]
    relu_only = [la for la in weighted if la.activation == "relu"]
    attention = any(la.kind == "attention" for la in layers)
    rnn = [la for la in layers if la.kind == "recurrent" and la.cell == "rnn"]
    lr = facts.lr
    out: list[tuple[str, str, str, tuple]] = []  # (remedy name, label, code, change)

    def add(name, label, code, change=()):
        out.append((name, label, code, change))

    if kind in ("vanishing", "dead") and relu_fed:
        which = f"for m in ({_list(relu_fed, 99)},)"
        if len(relu_fed) > 4:  # many: every layer of those classes
            classes = sorted({_CLASS.get(la.kind, "nn.Linear") for la in relu_fed})
            which = f"for m in model.modules() if isinstance(m, ({', '.join(classes)},))"
        add("kaiming_init", f"He init for the layers followed by ReLU ({_list(relu_fed)})",
            f"[nn.init.kaiming_normal_(m.weight, nonlinearity=\"relu\") {which}]")
    if kind in ("vanishing", "saturation") and sat_fed:
        act = sat_fed[0].activation
        add("relu", f"ReLU in place of {act} after {_list(sat_fed)}",
            f"nn.ReLU()  # or nn.LeakyReLU(0.01), in place of nn.{'Sigmoid' if act == 'sigmoid' else 'Tanh'}() after {_list(sat_fed)}")
        which = f"for m in ({_list(sat_fed, 99)},)" if len(sat_fed) <= 4 else \
            f"for m in model.modules() if isinstance(m, ({', '.join(sorted({_CLASS.get(la.kind, 'nn.Linear') for la in sat_fed}))},))"
        add("xavier_init", "Xavier init for the layers followed by " + act,
            f"[nn.init.xavier_normal_(m.weight, gain=nn.init.calculate_gain({act!r})) {which}]")
    if kind in ("vanishing", "saturation", "exploding", "nonfinite") and first is not None and first.kind != "norm":
        add("normalise", f"normalise the output of {access(first.name)}",
            f"nn.Sequential({access(first.name)}, {_norm_layer(first)})  # normalise its output")
    if kind == "vanishing" and len(weighted) >= 6 and not rnn:
        add("residual", "residual connections over the deep part", "x = x + block(x)  # skip connections around each block")
    if kind in ("vanishing", "vanishing_time") and rnn:
        r = rnn[0]
        add("lstm", f"LSTM in place of nn.RNN at {access(r.name)}",
            f"{access(r.name)} = nn.LSTM({r.fan_in or 'input_size'}, {r.fan_out or 'hidden_size'})  # or nn.GRU; the gates carry the gradient through time")
    if kind in ("exploding", "nonfinite", "vanishing_time"):
        add("clip", "clip the gradient norm before optimizer.step()",
            "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)  # before optimizer.step()", (("train.clip", "norm"),))
    if kind in ("exploding", "nonfinite", "dead") and lr is not None and lr == lr and lr > 0:
        add("lower_lr", f"a lower learning rate ({lr:g} -> {lr / 10:g}; - halves it live)",
            f"for g in optimizer.param_groups: g[\"lr\"] = {lr / 10:g}  # was {lr:g}", (("train.lr", lr / 2),))
    if kind in ("exploding", "nonfinite") and attention:
        add("warmup", "a learning-rate warmup (attention layers)",
            "scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=1000)  # scheduler.step() after optimizer.step()")
    if kind == "dead" and relu_only:
        add("leaky_relu", f"LeakyReLU in place of ReLU after {_list(relu_only)}",
            f"nn.LeakyReLU(0.01)  # in place of nn.ReLU() after {_list(relu_only)}")
    if kind == "vanishing" and facts.optimizer in ("SGD",):
        add("adam", "Adam in place of SGD", "optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)")
    return tuple(Remedy(label=f"{label}: {BY_NAME[name].why.split(': ', 1)[-1]}", change=change, code=code)
                 for name, label, code, change in out)
