"""The hooks of a sampled step: activation statistics, delta_norm and where non-finite values start.

Hooks are attached before a sampled step's forward pass and removed once its statistics are
taken, so an unsampled step runs no Python per module. Everything stays on the device:
each hook adds one small tensor of sums (a few reductions of the output) to a list, and
:meth:`Probes.collect` turns them into the statistics of every layer at once (a fixed number of
tensor operations whatever the depth) in one tensor that the watcher moves to the host together
with the norms (one transfer per sampled step).

* **delta_norm** of a layer is ||dL/dz|| for z the module's output, summed in quadrature over
  the calls of the step (a module called twice has two outputs). A forward hook registers a
  tensor hook on z; a tensor hook keeps the gradient of z as it was before any in-place op
  that follows (ReLU(inplace=True)), which ``register_full_backward_hook`` does not allow.
* **activation statistics** of an activation module (ReLU family, Sigmoid, Tanh, GELU, SiLU)
  are charged to the layer called last before it. Units are the features (dimension 1 of a
  2-D output, channels of an image-like output, the last dimension of a sequence);
  ``dead_fraction`` is the share of units whose derivative phi' is 0 on every example of the
  batch (ReLU: output <= 0; ReLU6 also output >= 6), ``saturation`` the share of
  (example, unit) values where |phi'| < 5% of its maximum (sigmoid s(1-s) < 0.0125, tanh
  1-t^2 < 0.05, GELU and SiLU from their input); act_mean and act_std are over all values.
  A layer with no activation module after it gets act_mean/act_std of its own output. Over
  the calls of a step the sums are pooled: with S1 = sum x, S2 = sum x^2 and n values,
  mean = S1/n and std = sqrt(S2/n - mean^2), accumulated in float64 (see :func:`moments`).
* **non-finite**: per call, whether the output (and, in the backward pass, its gradient) is
  all finite, read from its sum and its norm, into which NaN and Inf propagate; the first
  layer in forward order with a non-finite output, else the last one (nearest the loss) whose
  output gradient is non-finite, is named.
* **time_delta_norm** (recurrent layers): ||dL/dx_t|| over the batch and features, per time
  step of the first recurrent module's input sequence (a fused nn.RNN/LSTM/GRU hides h_t; the
  gradient at its input x_t is what reached step t through the recurrence, times W_ih).
"""

from __future__ import annotations

import math

import torch
from torch.overrides import TorchFunctionMode

from gradtui.torch.layers import FUNCTIONAL_ACTIVATIONS

SATURATION_FRACTION = 0.05
_GELU_MAX = 1.1289  # max of GELU'(x) = Phi(x) + x phi(x), at x ~ 0.75
_SILU_MAX = 1.0998  # max of SiLU'(x), at x ~ 2.4


def _first_tensor(output):
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


def _unit_dims(x: torch.Tensor, channels: bool) -> tuple:
    """The dimensions reduced over to get per-unit figures."""
    if x.dim() <= 1:
        return (0,) if x.dim() == 1 else ()
    if x.dim() == 2:
        return (0,)
    if channels:
        return (0,) + tuple(range(2, x.dim()))
    return tuple(range(x.dim() - 1))


def wide_dtype(device) -> torch.dtype:
    """The accumulation type of the sums: float64 (MPS has none: float32 there)."""
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


def moments(x: torch.Tensor) -> tuple:
    """(S1, ||x||) of all values of ``x``, reduced in float64 on its device.

    mean = S1/n and std = sqrt(max(||x||^2/n - mean^2, 0)) follow in :meth:`Probes.collect`;
    float64 keeps the cancellation harmless (relative error ~1e-16 (mean/std)^2).
    ``torch.std_mean`` computes the same with Welford's update, which on the CPU ran 10-20x
    slower than these two vectorised passes.
    """
    wide = wide_dtype(x.device)
    return x.sum(dtype=wide), torch.linalg.vector_norm(x, dtype=wide)


def derivative_masks(name: str, x_in: torch.Tensor, out: torch.Tensor):
    """(zero-derivative mask or None, saturated mask or None) of an activation's values."""
    if name == "relu":
        return out <= 0, None  # (activation_row counts dead ReLUs from the maximum instead)
    if name == "relu6":
        return (out <= 0) | (out >= 6), None
    if name == "sigmoid":
        s = out.float()
        return None, s * (1 - s) < 0.25 * SATURATION_FRACTION
    if name == "tanh":
        t = out.float()
        return None, 1 - t * t < SATURATION_FRACTION
    if name == "gelu" and x_in is not None:
        x = x_in.float()
        d = 0.5 * (1 + torch.erf(x / math.sqrt(2))) + x * torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return None, d.abs() < _GELU_MAX * SATURATION_FRACTION
    if name == "silu" and x_in is not None:
        x = x_in.float()
        s = torch.sigmoid(x)
        return None, (s * (1 + x * (1 - s))).abs() < _SILU_MAX * SATURATION_FRACTION
    return None, None


_ZEROS: dict = {}


def _zero(device, dtype) -> torch.Tensor:
    """A 0-d zero on ``device``, made once (it is only ever read: stacked into rows)."""
    key = (device, dtype)
    if key not in _ZEROS:
        _ZEROS[key] = torch.zeros((), dtype=dtype, device=device)
    return _ZEROS[key]


def activation_row(name: str, x_in, out: torch.Tensor, channels: bool) -> tuple:
    """(tensor [S1, ||out||, dead units, saturated values] on the device, values, units) of one
    call of an activation; ``units`` is 0 when the activation cannot die (no dead_fraction)."""
    o = out.detach()
    x = x_in.detach() if isinstance(x_in, torch.Tensor) and x_in.data_ptr() != o.data_ptr() else None
    zero, sat = (None, None) if name == "relu" else derivative_masks(name, x, o)
    wide = wide_dtype(o.device)
    s1, norm = moments(o)
    nothing = _zero(o.device, wide)
    dims = _unit_dims(o, channels) if o.dim() >= 1 else ()
    units = o.numel() // max(1, math.prod(o.shape[d] for d in dims)) if dims else 0
    if name == "relu" and dims:  # a unit is dead when even its largest output is <= 0: one pass
        dead = (o.amax(dim=dims) <= 0).sum(dtype=wide)
    elif zero is not None and dims:
        dead = zero.all(dim=dims).sum(dtype=wide)
    else:
        dead, units = nothing, 0
    saturated = sat.sum(dtype=wide) if sat is not None else nothing
    return torch.stack((s1, norm, dead, saturated)), o.numel(), units


class _FunctionalActivations(TorchFunctionMode):
    """Sees the activation functions called inside the model's forward (``F.relu(x)``,
    ``torch.tanh(x)``, ...) and hands each to :meth:`Probes.functional`. Entered by a forward
    pre-hook of the model and left by its forward hook on sampled steps only; the probes' own
    tensor operations run with it disabled."""

    def __init__(self, probes: "Probes"):
        super().__init__()
        self.probes = probes

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = FUNCTIONAL_ACTIVATIONS.get(func)
        if name is not None and not self.probes.inside_module and args:
            self.probes.functional(name, args[0], out)
        return out


class Probes:
    """The hooks of one sampled step over ``layers`` (LayerInfo, forward order).

    What the hooks see is kept per call, keyed by the layer's module (so a reordering of the
    layers keeps it): ``deltas`` (||dL/dz|| of each call), ``outputs`` ([S1, ||z||] of each call
    of a layer without an activation module), ``sums`` (S1 of each call of the others: their
    outputs are only checked for finiteness), ``activations`` (:func:`activation_row` of each call).
    """

    PER_LAYER = 7  # columns of :meth:`collect`

    def __init__(self, layers, acts: dict, recurrent: int | None, measure_time: bool = True, root=None):
        self.layers = layers
        self.root = root  # the model: activation functions are seen inside its forward
        self.acts = acts
        self.index = {info.module: i for i, info in enumerate(layers)}
        self.recurrent = recurrent  # index of the first recurrent layer
        self.measure_time = measure_time
        self.handles = []
        self.reset()

    def reset(self) -> None:
        self.deltas: list = []  # (module, tensor)
        self.outputs: list = []  # (module, tensor [S1, ||z||], values)
        self.sums: list = []  # (module, S1)
        self.activations: list = []  # (module, tensor [S1, ||a||, dead, saturated], values, units)
        self.time_profile = None
        self._last = None  # the module of the layer called last
        self.inside_module = 0  # > 0 while an activation module runs (its function is its own)
        self.functional_seen: dict = {}  # layer module -> the first activation function called after it
        self._modes: list = []

    def adopt(self, old: "Probes") -> None:
        """Take over what ``old`` (the same modules in another order) has seen this step."""
        self.deltas, self.outputs, self.sums, self.activations = old.deltas, old.outputs, old.sums, old.activations
        self.time_profile, self._last = old.time_profile, old._last
        self.functional_seen = old.functional_seen

    # -- attaching -------------------------------------------------------------------------
    def attach(self) -> None:
        self.reset()
        for info in self.layers:
            self.handles.append(info.module.register_forward_hook(self._layer_hook))
        for module in self.acts:
            self.handles.append(module.register_forward_pre_hook(self._act_pre_hook))
            self.handles.append(module.register_forward_hook(self._act_hook, always_call=True))
        if self.root is not None:
            self.handles.append(self.root.register_forward_pre_hook(self._enter_forward))
            self.handles.append(self.root.register_forward_hook(self._leave_forward, always_call=True))
        if self.recurrent is not None and self.measure_time:
            self.handles.append(self.layers[self.recurrent].module.register_forward_pre_hook(self._time_hook))

    def detach(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()
        while self._modes:  # a forward that raised before its forward hook could leave one
            self._modes.pop().__exit__(None, None, None)

    # -- hooks -------------------------------------------------------------------------------
    def _enter_forward(self, module, inputs) -> None:
        mode = _FunctionalActivations(self)
        mode.__enter__()
        self._modes.append(mode)

    def _leave_forward(self, module, inputs, output) -> None:
        if self._modes:
            self._modes.pop().__exit__(None, None, None)

    def functional(self, name: str, x_in, out) -> None:
        """An activation function called outside a module: charged to the layer called last."""
        layer = self._last
        out = _first_tensor(out)
        if layer is None or out is None or not out.is_floating_point():
            return
        with torch._C.DisableTorchFunction():
            channels = self.layers[self.index[layer]].kind == "conv" or (out.dim() >= 4)
            self.activations.append((layer, *activation_row(name, x_in, out, channels)))
        self.functional_seen.setdefault(layer, name)

    def _act_pre_hook(self, module, inputs) -> None:
        self.inside_module += 1

    def _layer_hook(self, module, inputs, output) -> None:
        with torch._C.DisableTorchFunction():
            self._layer_stats(module, output)

    def _layer_stats(self, module, output) -> None:
        self._last = module
        z = _first_tensor(output)
        if z is None or not z.is_floating_point():
            return
        zd = z.detach()
        if self.layers[self.index[module]].activation is None:  # its own output is what act_mean/act_std describe
            self.outputs.append((module, torch.stack(moments(zd)), zd.numel()))
        else:  # NaN and Inf propagate into the sum: enough to check the output
            self.sums.append((module, zd.sum(dtype=wide_dtype(zd.device))))
        if z.requires_grad:
            z.register_hook(self._grad_hook(module))

    def _grad_hook(self, module):
        def hook(grad):
            self.deltas.append((module, torch.linalg.vector_norm(grad.detach(), dtype=torch.float32)))
        return hook

    def _time_hook(self, module, inputs):
        """Before the first recurrent module: ||dL/dx_t|| per time step of its input sequence, the
        error that reached step t through the recurrence (times W_ih). An input that needs no
        gradient (the data itself) is given one on a detached copy: the same values, no upstream
        parameters, so the results do not change."""
        x = inputs[0] if inputs else None
        if self.time_profile is not None or not isinstance(x, torch.Tensor) or x.dim() != 3 or not x.is_floating_point():
            return None
        axis = 1 if getattr(module, "batch_first", False) else 0
        self.time_profile = []
        if not x.requires_grad:
            x = x.detach().requires_grad_()
        dims = (0, 2) if axis == 1 else (1, 2)
        x.register_hook(lambda g: self.time_profile.append(torch.linalg.vector_norm(g.detach(), dim=dims, dtype=torch.float32)))
        return (x,) + tuple(inputs[1:])

    def _act_hook(self, module, inputs, output) -> None:
        self.inside_module = max(0, self.inside_module - 1)
        with torch._C.DisableTorchFunction():
            self._act_stats(module, inputs, output)

    def _act_stats(self, module, inputs, output) -> None:
        layer = self._last
        out = _first_tensor(output)
        if layer is None or out is None or not out.is_floating_point():
            return
        x_in = inputs[0] if inputs else None
        channels = self.layers[self.index[layer]].kind == "conv" or (out.dim() >= 4)
        self.activations.append((layer, *activation_row(self.acts[module][1], x_in, out, channels)))

    # -- collecting --------------------------------------------------------------------------
    def _pool(self, entries: list, width: int, device, wide, squared: int | None = None):
        """Per layer, the sum over ``entries`` ((module, tensor of ``width`` values), ...) with
        column ``squared`` squared first: an (L, width) tensor on ``device``."""
        total = torch.zeros(len(self.layers), width, dtype=wide, device=device)
        if entries:
            at = torch.tensor([self.index[e[0]] for e in entries], device=device)
            rows = torch.stack([t if t.device == device else t.to(device) for _, t in entries]).to(wide).reshape(-1, width)
            if squared is not None:
                rows[:, squared].square_()
            total.index_add_(0, at, rows)
        return total

    def collect(self, device) -> torch.Tensor:
        """One float32 tensor on ``device``: per layer [delta_norm, act_mean, act_std, dead,
        saturation, output finite, gradient finite], then the time profile (if any). NaN
        marks what was not seen."""
        device = torch.device(device)
        L = len(self.layers)
        wide = wide_dtype(device)
        # per layer: output-gradient calls, activation values, activation units, output values, activation calls
        counts = [[0] * 5 for _ in range(L)]
        for module, _ in self.deltas:
            counts[self.index[module]][0] += 1
        for module, _, values, units in self.activations:
            c = counts[self.index[module]]
            c[1], c[2], c[4] = c[1] + values, c[2] + units, c[4] + 1
        for module, _, values in self.outputs:
            counts[self.index[module]][3] += values
        n = torch.tensor(counts, dtype=wide, device=device)
        delta_sq = self._pool(self.deltas, 1, device, wide, squared=0)[:, 0]  # sum over calls of ||dL/dz||^2
        acts = self._pool([e[:2] for e in self.activations], 4, device, wide, squared=1)  # S1, S2, dead, saturated
        outs = self._pool([e[:2] for e in self.outputs], 2, device, wide, squared=1)  # S1, S2
        sums = self._pool(self.sums, 1, device, wide)[:, 0]
        nan = torch.full((L,), math.nan, dtype=wide, device=device)
        has_act = n[:, 4] > 0
        s1 = torch.where(has_act, acts[:, 0], outs[:, 0])
        s2 = torch.where(has_act, acts[:, 1], outs[:, 1])
        values = torch.where(has_act, n[:, 1], torch.where(n[:, 3] > 0, n[:, 3], nan))
        mean = s1 / values
        table = torch.stack((
            torch.where(n[:, 0] > 0, delta_sq.sqrt(), nan),
            mean,
            (s2 / values - mean * mean).clamp_min(0).sqrt(),
            torch.where(has_act, acts[:, 2] / n[:, 2].clamp_min(1), nan),  # dead units / units
            torch.where(has_act, acts[:, 3] / n[:, 1].clamp_min(1), nan),  # saturated values / values
            (outs.isfinite().all(dim=1) & sums.isfinite()).to(wide),  # NaN and Inf propagate into the sums
            delta_sq.isfinite().to(wide),
        ), dim=1)
        flat = table.float().reshape(-1)
        if self.time_profile:
            flat = torch.cat((flat, self.time_profile[0].reshape(-1).to(device)))
        return flat
