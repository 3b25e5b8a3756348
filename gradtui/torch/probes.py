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
  A layer with no activation module after it gets act_mean/act_std of its own output. Each
  call keeps S1 = sum x and M2 = sum (x - mean)^2 (:func:`moments`); over the calls of a step
  they are pooled (Chan et al.'s rule) into the mean and the population std of all values.
* **non-finite**: per call, whether the output (and, in the backward pass, its gradient) is
  all finite, read from the output's minimum and maximum and the gradient's norm, into which
  NaN and Inf propagate; the first layer in forward order with a non-finite output, else the
  last one (nearest the loss) whose output gradient is non-finite, is named.
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


def wide_dtype(device: torch.device) -> torch.dtype:
    """The type the statistics are pooled in: float64 (MPS has none: float32 there)."""
    return torch.float32 if device.type == "mps" else torch.float64


def moments(x: torch.Tensor) -> tuple:
    """(S1, M2) of all values of ``x`` on its device: S1 = sum x and M2 = sum (x - S1/n)^2,
    the sum of squares about the mean (float32 values: float32, reduced by PyTorch's pairwise
    sum and BLAS's dot; other types in float32 too).

    Centring first keeps the variance accurate when the mean is large against the spread (a
    saturated sigmoid: mean 0.99, std 0.01), where sum x^2/n - mean^2 would cancel; the pooled
    statistics over calls follow by Chan's rule in :meth:`Probes.collect`. Two passes in float32
    cost less than half of one float64 reduction, and ``torch.std_mean`` (Welford's update) ran
    10-20x slower than either on the CPU.
    """
    flat = x.reshape(-1)
    if flat.dtype != torch.float32 and flat.dtype != torch.float64:
        flat = flat.float()
    s1 = flat.sum()
    centred = flat - s1 / max(flat.numel(), 1)
    return s1, torch.dot(centred, centred)


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


def activation_row(name: str, x_in, out: torch.Tensor, channels: bool) -> tuple:
    """What one call of an activation leaves for :meth:`Probes.collect`, as few tensor operations
    as possible (each costs microseconds of dispatch at every layer): (values, units, S1, M2,
    per-unit maxima or None, dead units or None, saturated values or None). ReLU's dead units
    are counted later from its per-unit maxima (dead when even the largest output is <= 0);
    ``units`` is 0 when the activation cannot die (no dead_fraction)."""
    o = out.detach()
    x = x_in.detach() if isinstance(x_in, torch.Tensor) and x_in.data_ptr() != o.data_ptr() else None
    zero, sat = (None, None) if name == "relu" else derivative_masks(name, x, o)
    s1, m2 = moments(o)
    dims = _unit_dims(o, channels) if o.dim() >= 1 else ()
    units = o.numel() // max(1, math.prod(o.shape[d] for d in dims)) if dims else 0
    maxima = dead = None
    if name == "relu" and dims:
        maxima = o.amax(dim=dims)
    elif zero is not None and dims:
        dead = zero.all(dim=dims).sum()
    else:
        units = 0
    return o.numel(), units, s1, m2, maxima, dead, (sat.sum() if sat is not None else None)


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
    layers keeps it): ``deltas`` (||dL/dz|| of each call), ``outputs`` ((S1, M2) of each call
    of a layer without an activation module), ``extremes`` ([min, max] of each call of the others: their
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
        self.deltas: list = []  # (module, (||dL/dz||,))
        self.outputs: list = []  # (module, (S1, M2), values)
        self.extremes: list = []  # (module, (min, max))
        self.activations: list = []  # (module, *activation_row(...))
        self.time_profile = None
        self._last = None  # the module of the layer called last
        self.inside_module = 0  # > 0 while an activation module runs (its function is its own)
        self.functional_seen: dict = {}  # layer module -> the first activation function called after it
        self._modes: list = []

    def adopt(self, old: "Probes") -> None:
        """Take over what ``old`` (the same modules in another order) has seen this step."""
        self.deltas, self.outputs, self.extremes, self.activations = old.deltas, old.outputs, old.extremes, old.activations
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
        # NaN propagates into the minimum and maximum, and an Inf is one of them (no sum that could overflow)
        self.extremes.append((module, torch.aminmax(zd)))
        if self.layers[self.index[module]].activation is None:  # its own output is what act_mean/act_std describe
            self.outputs.append((module, moments(zd), zd.numel()))
        if z.requires_grad:
            z.register_hook(self._grad_hook(module))

    def _grad_hook(self, module):
        def hook(grad):
            self.deltas.append((module, (torch.linalg.vector_norm(grad.detach(), dtype=torch.float32),)))
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
    def _rows(self, entries: list, width: int, device, wide):
        """(the entries' ``width`` scalar tensors, ``(module, (t1, t2, ...), ...)``, as an
        (n, width) tensor in ``wide`` on ``device``, their layers' indices)."""
        if not entries:
            return torch.zeros(0, width, dtype=wide, device=device), torch.zeros(0, dtype=torch.long, device=device)
        at = torch.tensor([self.index[e[0]] for e in entries], device=device)
        rows = torch.stack([t if t.device == device else t.to(device) for e in entries for t in e[1]])
        return rows.to(wide).reshape(-1, width), at

    def _sum(self, rows, at, L: int):
        """Per layer, the sum of ``rows`` over its calls: (L, width)."""
        return torch.zeros(L, rows.shape[1], dtype=rows.dtype, device=rows.device).index_add_(0, at, rows)

    def _pooled(self, rows, at, values: list, L: int):
        """Per layer (mean, population std) over all values of its calls, from each call's
        (S1, M2) in ``rows[:, :2]`` and its number of values (Chan et al.'s pairwise rule:
        M2 = sum_i M2_i + n_i (S1_i/n_i - mean)^2); NaN for a layer without calls."""
        n_call = torch.tensor(values, dtype=rows.dtype, device=rows.device)
        n = self._sum(n_call.reshape(-1, 1), at, L)[:, 0]
        mean = self._sum(rows[:, :1], at, L)[:, 0] / n  # 0/0: NaN
        spread = rows[:, 1] + n_call * (rows[:, 0] / n_call - mean[at]) ** 2
        return mean, (self._sum(spread.reshape(-1, 1), at, L)[:, 0] / n).sqrt()

    def _counts(self, tensors: list, at: list, L: int, device, wide):
        """Per layer, the sum of the scalar ``tensors`` charged to layers ``at``: (L,)."""
        total = torch.zeros(L, dtype=wide, device=device)
        if tensors:
            total.index_add_(0, torch.tensor(at, device=device), torch.stack([t.to(device) for t in tensors]).to(wide))
        return total

    def collect(self, device) -> torch.Tensor:
        """One float32 tensor on ``device``: per layer [delta_norm, act_mean, act_std, dead,
        saturation, output finite, gradient finite], then the time profile (if any). NaN
        marks what was not seen."""
        device = torch.device(device)
        L = len(self.layers)
        wide = wide_dtype(device)
        nan = torch.full((L,), math.nan, dtype=wide, device=device)
        deltas, at_d = self._rows(self.deltas, 1, device, wide)
        delta_sq = self._sum(deltas * deltas, at_d, L)[:, 0]  # sum over calls of ||dL/dz||^2
        seen = self._sum(torch.ones_like(deltas), at_d, L)[:, 0] > 0
        acts = self.activations  # (module, values, units, S1, M2, maxima, dead, saturated)
        layer_of = [self.index[e[0]] for e in acts]
        moments_, at_a = self._rows([(e[0], e[3:5]) for e in acts], 2, device, wide)
        act_mean, act_std = self._pooled(moments_, at_a, [e[1] for e in acts], L)
        units, values = [0] * L, [0] * L
        for i, e in zip(layer_of, acts):
            units[i] += e[2]
            values[i] += e[1]
        dead = self._counts([e[6] for e in acts if e[6] is not None], [i for i, e in zip(layer_of, acts) if e[6] is not None], L, device, wide)
        maxima = [(i, e[5]) for i, e in zip(layer_of, acts) if e[5] is not None]
        if maxima:  # ReLU: a unit is dead when its largest output is <= 0
            flat = torch.cat([m if m.device == device else m.to(device) for _, m in maxima])
            owner = torch.tensor([i for i, _ in maxima], device=device).repeat_interleave(
                torch.tensor([m.numel() for _, m in maxima], device=device))
            dead = dead.index_add(0, owner, (flat <= 0).to(wide))
        saturated = self._counts([e[7] for e in acts if e[7] is not None], [i for i, e in zip(layer_of, acts) if e[7] is not None], L, device, wide)
        per = torch.tensor([units, values], dtype=wide, device=device).clamp_min(1)
        fractions = torch.stack((dead, saturated), dim=1) / per.T  # dead units / units, saturated values / values
        outs, at_o = self._rows(self.outputs, 2, device, wide)  # S1, M2 of outputs without an activation
        own_mean, own_std = self._pooled(outs, at_o, [e[2] for e in self.outputs], L)
        extremes, at_x = self._rows(self.extremes, 2, device, wide)
        has_act = torch.tensor([bool(v) for v in values], device=device)
        finite = self._sum(extremes, at_x, L).isfinite().all(dim=1)
        table = torch.stack((
            torch.where(seen, delta_sq.sqrt(), nan),
            torch.where(has_act, act_mean, own_mean),
            torch.where(has_act, act_std, own_std),
            torch.where(has_act, fractions[:, 0], nan),
            torch.where(has_act, fractions[:, 1], nan),
            finite.to(wide),
            delta_sq.isfinite().to(wide),
        ), dim=1)
        flat = table.float().reshape(-1)
        if self.time_profile:
            flat = torch.cat((flat, self.time_profile[0].reshape(-1).to(device)))
        return flat
