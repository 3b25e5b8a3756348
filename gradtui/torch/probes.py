"""The hooks of a sampled step: activation statistics, delta_norm and where non-finite values start.

Hooks are attached before a sampled step's forward pass and removed once its statistics are
taken, so an unsampled step runs no Python per module. Everything stays on the device:
each hook adds a few small tensors to lists, and :meth:`Probes.collect` stacks them into one
tensor that the watcher moves to the host together with the norms (one transfer per
sampled step).

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
  A layer with no activation module after it gets act_mean/act_std of its own output.
* **non-finite**: per call, whether the output (and, in the backward pass, its gradient) is
  all finite, read from its sum (or mean) and its norm, into which NaN and Inf propagate; the first layer in forward order with a non-finite output, else the last one
  (nearest the loss) whose output gradient is non-finite, is named.
* **time_delta_norm** (recurrent layers): ||dL/dx_t|| over the batch and features, per time
  step of the first recurrent module's input sequence (a fused nn.RNN/LSTM/GRU hides h_t; the
  gradient at its input x_t is what reached step t through the recurrence, times W_ih).
"""

from __future__ import annotations

import math

import torch

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


def mean_std(x: torch.Tensor) -> torch.Tensor:
    """[mean, std] of all values of ``x`` (population std), float32, on its device.

    From two reductions accumulated in float64, S1 = sum x and S2 = ||x||^2:
    mean = S1/n, std = sqrt(max(S2/n - mean^2, 0)). float64 keeps the cancellation harmless
    (relative error ~1e-16 (mean/std)^2); ``torch.std_mean`` computes the same with Welford's
    update, which on the CPU ran 10-20x slower than these two vectorised passes and made
    activation statistics the largest cost of a sampled step.
    """
    n = max(x.numel(), 1)
    wide = torch.float32 if x.device.type == "mps" else torch.float64  # MPS has no float64
    mean = x.sum(dtype=wide) / n
    square = torch.linalg.vector_norm(x, dtype=wide).square() / n
    return torch.stack((mean, (square - mean * mean).clamp_min(0).sqrt())).float()


def derivative_masks(name: str, x_in: torch.Tensor, out: torch.Tensor):
    """(zero-derivative mask or None, saturated mask or None) of an activation's values."""
    if name == "relu":
        return out <= 0, None  # (activation_stats counts dead ReLUs from the maximum instead)
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


def activation_stats(name: str, x_in, out: torch.Tensor, channels: bool) -> torch.Tensor:
    """[act_mean, act_std, dead_fraction, saturation] of one call, a float32 tensor on the device."""
    o = out.detach()
    x = x_in.detach() if isinstance(x_in, torch.Tensor) and x_in.data_ptr() != o.data_ptr() else None
    zero, sat = (None, None) if name == "relu" else derivative_masks(name, x, o)
    moments = mean_std(o)
    nothing = torch.zeros((), device=o.device)
    dims = _unit_dims(o, channels) if o.dim() >= 1 else ()
    if name == "relu" and dims:  # a unit is dead when even its largest output is <= 0: one pass
        dead = (o.amax(dim=dims) <= 0).float().mean()
    elif zero is not None and o.dim() >= 1:
        dead = zero.all(dim=dims).float().mean() if dims else zero.float().mean()
    else:
        dead = nothing
    saturated = sat.float().mean() if sat is not None else nothing
    return torch.cat((moments, torch.stack((dead, saturated))))


class Probes:
    """The hooks of one sampled step over ``layers`` (LayerInfo, forward order)."""

    def __init__(self, layers, acts: dict, recurrent: int | None, measure_time: bool = True):
        self.layers = layers
        self.acts = acts
        self.index = {info.module: i for i, info in enumerate(layers)}
        self.recurrent = recurrent  # index of the first recurrent layer
        self.measure_time = measure_time
        self.handles = []
        self.reset()

    def reset(self) -> None:
        n = len(self.layers)
        self.delta_sq = [[] for _ in range(n)]
        self.act = [[] for _ in range(n)]
        self.out_stats = [[] for _ in range(n)]
        self.out_finite = [[] for _ in range(n)]
        self.grad_finite = [[] for _ in range(n)]
        self.time_profile = None
        self._last = None

    # -- attaching -------------------------------------------------------------------------
    def attach(self) -> None:
        self.reset()
        for info in self.layers:
            self.handles.append(info.module.register_forward_hook(self._layer_hook))
        for module in self.acts:
            self.handles.append(module.register_forward_hook(self._act_hook))
        if self.recurrent is not None and self.measure_time:
            self.handles.append(self.layers[self.recurrent].module.register_forward_pre_hook(self._time_hook))

    def detach(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    # -- hooks -------------------------------------------------------------------------------
    def _layer_hook(self, module, inputs, output) -> None:
        i = self.index[module]
        self._last = i
        z = _first_tensor(output)
        if z is None or not z.is_floating_point():
            return
        zd = z.detach()
        if self.layers[i].activation is None:  # its own output is what act_mean/act_std describe
            moments = mean_std(zd)
            self.out_stats[i].append(moments)
            self.out_finite[i].append(torch.isfinite(moments[0]))  # NaN and Inf propagate into the mean
        else:
            self.out_finite[i].append(torch.isfinite(zd.sum(dtype=torch.float32)))
        if z.requires_grad:
            z.register_hook(self._grad_hook(i))

    def _grad_hook(self, i: int):
        def hook(grad):
            g = grad.detach()
            norm = torch.linalg.vector_norm(g, dtype=torch.float32)
            self.delta_sq[i].append(norm ** 2)
            self.grad_finite[i].append(torch.isfinite(norm))  # NaN and Inf propagate into the norm
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
        i = self._last
        out = _first_tensor(output)
        if i is None or out is None or not out.is_floating_point():
            return
        x_in = inputs[0] if inputs else None
        channels = self.layers[i].kind == "conv" or (out.dim() >= 4)
        self.act[i].append(activation_stats(self.acts[module][1], x_in, out, channels))

    # -- collecting --------------------------------------------------------------------------
    def collect(self, device) -> torch.Tensor:
        """One float32 tensor on ``device``: per layer [delta_norm, act_mean, act_std, dead,
        saturation, output finite, gradient finite], then the time profile (if any). NaN
        marks what was not seen."""
        nan = torch.full((), math.nan, device=device)
        one = torch.ones((), device=device)
        rows = []
        for i in range(len(self.layers)):
            d = torch.stack(self.delta_sq[i]).sum().sqrt() if self.delta_sq[i] else nan
            if self.act[i]:
                a = torch.stack(self.act[i]).mean(dim=0)
            elif self.out_stats[i]:
                a = torch.cat((torch.stack(self.out_stats[i]).mean(dim=0), torch.stack((nan, nan))))
            else:
                a = torch.stack((nan, nan, nan, nan))
            of = torch.stack(self.out_finite[i]).all().float() if self.out_finite[i] else one
            gf = torch.stack(self.grad_finite[i]).all().float() if self.grad_finite[i] else one
            rows.append(torch.cat((d.reshape(1).to(device), a.to(device), of.reshape(1).to(device), gf.reshape(1).to(device))))
        flat = torch.cat(rows) if rows else torch.zeros(0, device=device)
        if self.time_profile:
            prof = torch.stack(self.time_profile[:1]).reshape(-1).to(device)
            flat = torch.cat((flat, prof))
        return flat

    PER_LAYER = 7
