"""Which modules of a PyTorch model become rows of the record's layer table, and what each row says.

A **layer** is a module with parameters of its own (``recurse=False``): Linear, Conv*, norms,
Embedding, RNN/LSTM/GRU, the in-projection of MultiheadAttention, ... named by its module
path. Its **weight** is the parameter called ``weight`` (for modules without one, all of its
own parameters with two or more dimensions: an LSTM's ``weight_ih_l0``, ``weight_hh_l0``, ...);
``grad_norm`` and ``weight_norm`` are taken over the weight, the other parameters (biases,
...) are recorded by name. An **activation module** (ReLU family, Sigmoid, Tanh, GELU, SiLU)
has no parameters; its statistics belong to the layer called just before it, and so do those
of an activation function called outside a module (``F.relu(x)``, ``torch.tanh(x)``,
``x.sigmoid()``: :data:`FUNCTIONAL_ACTIVATIONS`), seen inside the model's forward on sampled steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

ACTIVATIONS = {  # module class -> the record's activation name
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.LeakyReLU: "leaky_relu", nn.PReLU: "prelu", nn.ELU: "elu",
    nn.SELU: "selu", nn.CELU: "celu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.GELU: "gelu", nn.SiLU: "silu",
}
_F = nn.functional
FUNCTIONAL_ACTIVATIONS = {  # activation functions called outside a module -> the record's activation name
    **dict.fromkeys((_F.relu, _F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_), "relu"),
    **dict.fromkeys((_F.relu6,), "relu6"),
    **dict.fromkeys((_F.leaky_relu, _F.leaky_relu_), "leaky_relu"),
    **dict.fromkeys((_F.elu, _F.elu_), "elu"),
    **dict.fromkeys((_F.selu,), "selu"),
    **dict.fromkeys((_F.celu,), "celu"),
    **dict.fromkeys((_F.sigmoid, torch.sigmoid, torch.sigmoid_, torch.Tensor.sigmoid, torch.Tensor.sigmoid_), "sigmoid"),
    **dict.fromkeys((_F.tanh, torch.tanh, torch.tanh_, torch.Tensor.tanh, torch.Tensor.tanh_), "tanh"),
    **dict.fromkeys((_F.gelu,), "gelu"),
    **dict.fromkeys((_F.silu,), "silu"),
}
_KINDS = (  # (module classes, kind), first match wins
    ((nn.RNNBase,), "recurrent"),
    ((nn.MultiheadAttention,), "attention"),
    ((nn.modules.conv._ConvNd,), "conv"),
    ((nn.Linear, nn.Bilinear), "linear"),
    ((nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm), "norm"),
    ((nn.Embedding, nn.EmbeddingBag), "embedding"),
)


def activation_name(module) -> str | None:
    """The record's name for an activation module, or None when it is not one."""
    return ACTIVATIONS.get(type(module))


def kind_of(module) -> str:
    for classes, kind in _KINDS:
        if isinstance(module, classes):
            return kind
    return "other"


@dataclass
class LayerInfo:
    """One row of the layer table, with the parameters behind it."""

    name: str
    module: object
    kind: str
    weights: list  # [(param name, Parameter)] whose norm is the layer's grad_norm / weight_norm
    others: list  # [(param name, Parameter)] recorded in param_norms
    activation: str | None = None
    fan_in: int | None = None
    fan_out: int | None = None
    cell: str | None = None
    shapes: dict = field(default_factory=dict)

    def entry(self) -> dict:
        out = {"name": self.name, "kind": self.kind}
        for key in ("activation", "fan_in", "fan_out", "cell"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["shapes"] = self.shapes
        return out


def _fans(module, weights) -> tuple[int | None, int | None]:
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, nn.modules.conv._ConvNd):
        k = 1
        for s in module.kernel_size:
            k *= s
        return module.in_channels // module.groups * k, module.out_channels
    if isinstance(module, nn.RNNBase):
        return module.input_size, module.hidden_size
    if isinstance(module, nn.Embedding):
        return module.num_embeddings, module.embedding_dim
    return None, None


def describe(name: str, module) -> LayerInfo:
    own = list(module.named_parameters(recurse=False))
    weights = [(n, p) for n, p in own if n == "weight"] or [(n, p) for n, p in own if p.dim() >= 2] or own
    chosen = {n for n, _ in weights}
    others = [(n, p) for n, p in own if n not in chosen]
    fan_in, fan_out = _fans(module, weights)
    cell = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn"}.get(type(module))
    return LayerInfo(name=name or type(module).__name__.lower(), module=module, kind=kind_of(module), weights=weights,
                     others=others, fan_in=fan_in, fan_out=fan_out, cell=cell,
                     shapes={n: list(p.shape) for n, p in own})


def candidates(model) -> tuple[list[LayerInfo], dict]:
    """The layers (modules with parameters of their own, each module once, in registration
    order) and the activation modules ({module: (path, activation name)})."""
    layers, acts = [], {}
    for name, module in model.named_modules():
        act = activation_name(module)
        if act is not None:
            acts[module] = (name, act)
        if any(True for _ in module.parameters(recurse=False)):
            layers.append(describe(name, module))
    return layers, acts


def order_by_calls(layers: list[LayerInfo], acts: dict, calls: list) -> list[LayerInfo]:
    """Layers in forward order from the modules' first calls (``calls``: modules, in call order);
    layers never called keep registration order after those called. Each layer's activation is
    the first activation module called after it and before the next layer."""
    by_module = {info.module: info for info in layers}
    seen, ordered = set(), []
    last_layer = None
    for module in calls:
        if module in by_module:
            last_layer = by_module[module]
            if module not in seen:
                seen.add(module)
                ordered.append(last_layer)
        elif module in acts and last_layer is not None and last_layer.activation is None:
            last_layer.activation = acts[module][1]
    ordered += [info for info in layers if info.module not in seen]
    return ordered
