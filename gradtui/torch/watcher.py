"""Watcher: per-layer gradient statistics of a user's PyTorch model, written as a gradtui record.

``watch(model, optimizer)`` replaces the optimizer's ``step`` method on that one instance
(restored by ``close``). Step n (counted from 1) is **sampled** when (n - 1) % every == 0:
the hooks of :mod:`gradtui.torch.probes` are attached before its forward pass (after the
previous step) and removed in its ``step``, where, on the device,

* G_p = ||grad p|| for every parameter (float32, ``torch._foreach_norm`` when all gradients
  are float32/float64, else one ``vector_norm(dtype=float32)`` each: mixed precision),
* the global norm ||g|| = sqrt(sum_p G_p^2) over distinct parameters (shared ones once),
* a layer's grad_norm = sqrt(sum over its weight parameters of G_p^2), weight_norm the same
  over ||p|| after the update, update_ratio = ||W_after - W_before|| / ||W_after||,

and everything (with the probes' statistics) is moved to the host in one transfer. Unsampled
steps call the optimizer's own step and nothing else (plus one norm of the gradient and one
transfer when ``on_nonfinite`` is "skip" or "raise", which must decide before the update).
The model's results are never changed: the watcher reads tensors and never writes them,
except by a remedy the user sends (clipping, learning rate, skipping a non-finite step).
"""

from __future__ import annotations

import math
import sys
import time
from datetime import datetime
from pathlib import Path

import torch

from gradtui.control_channel import ControlReader, control_path
from gradtui.record import RecordError, RecordWriter
from gradtui.torch.layers import candidates, order_by_calls
from gradtui.torch.probes import Probes

NONFINITE_MODES = ("record", "skip", "raise")
PRODUCER = "gradtui.torch"


class NonFiniteError(FloatingPointError):
    """A step produced NaN or Inf (on_nonfinite="raise"); ``layer`` names where it started."""

    def __init__(self, message: str, step: int, layer: str | None):
        super().__init__(message)
        self.step, self.layer = step, layer


def _unwrap(model):
    """(the module whose submodules are hooked, compiled?): DDP and torch.compile wrappers."""
    compiled = False
    while True:
        if hasattr(model, "_orig_mod"):
            model, compiled = model._orig_mod, True
        elif isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model, compiled


def _rank() -> tuple[int, int]:
    """(rank, world size) of this process (0, 1 without torch.distributed)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _norms(tensors) -> torch.Tensor:
    """float32 L2 norms of a list of tensors, one tensor of shape (len,), on their device."""
    if not tensors:
        return torch.zeros(0)
    if all(t.dtype in (torch.float32, torch.float64) for t in tensors) and len({t.device for t in tensors}) == 1:
        return torch.stack(torch._foreach_norm(tensors)).float()
    return torch.stack([torch.linalg.vector_norm(t, dtype=torch.float32).to(tensors[0].device) for t in tensors])


class Watcher:
    """See :func:`gradtui.torch.watch`."""

    def __init__(self, model, optimizer, record=None, every: int = 10, on_nonfinite: str = "record",
                 clip_norm: float = 1.0, control: bool = True, quiet: bool = False):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a whole number of steps >= 1, not {every!r}")
        if on_nonfinite not in NONFINITE_MODES:
            raise ValueError(f"on_nonfinite must be one of {', '.join(NONFINITE_MODES)}, not {on_nonfinite!r}")
        if not hasattr(optimizer, "step") or not hasattr(optimizer, "param_groups"):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, not {type(optimizer).__name__}")
        self.model, self.optimizer = model, optimizer
        self.every, self.on_nonfinite, self.clip_norm = every, on_nonfinite, float(clip_norm)
        self.clip = False
        self.paused = False
        self.steps = 0
        self.closed = False
        rank, world = _rank()
        self.active = rank == 0  # DDP: rank 0 records, every other rank only runs its loop
        control = control and world == 1  # a live change on one rank would make the replicas diverge
        inner, self.compiled = _unwrap(model)
        self._inner = inner
        self._t0 = time.monotonic()
        self._pending: dict | None = None
        self._header_written = False
        self._control = None
        if not self.active:
            self.path = None
            return
        if record is None:
            record = f"gradtui-{datetime.now():%Y%m%d-%H%M%S}.jsonl"
            if not quiet:
                print(f"gradtui: recording to {Path(record).resolve()}; watch it with `gradtui watch {record}`", file=sys.stderr)
        self.path = Path(record)
        self._writer = RecordWriter(self.path, force=True)
        if control:
            self._control = ControlReader(control_path(self.path))
        self._candidates, self._acts = candidates(inner)
        self.layers = list(self._candidates)
        self._calls: list = []
        self._order_handles = []
        if not self.compiled:  # forward order: the modules' calls in the first step
            for m in {info.module for info in self._candidates} | set(self._acts):
                self._order_handles.append(m.register_forward_pre_hook(lambda mod, inp: self._calls.append(mod)))
        self._build_tables()
        self._original_step = optimizer.step
        optimizer.step = self._step
        self._arm(1)

    # -- tables -----------------------------------------------------------------------------
    def _build_tables(self) -> None:
        """Index tensors from (layer, parameter) pairs to distinct parameters."""
        params, seen = [], {}
        for info in self.layers:
            for _, p in info.weights + info.others:
                if id(p) not in seen:
                    seen[id(p)] = len(params)
                    params.append(p)
        self.params = params
        self._weight_pairs = [(li, seen[id(p)]) for li, info in enumerate(self.layers) for _, p in info.weights]
        self._other_names = [(f"{info.name}.{n}", seen[id(p)]) for info in self.layers for n, p in info.others]
        self._weight_ids = sorted({pi for _, pi in self._weight_pairs})
        self._before = None  # the copy of the weights a sampled step takes (_copy_weights)
        pos = {p: j for j, p in enumerate(self._weight_ids)}
        self._pair_index = ([li for li, _ in self._weight_pairs], [pi for _, pi in self._weight_pairs],
                            [pos[pi] for _, pi in self._weight_pairs])  # layer, parameter, copied weight
        recurrent = next((i for i, info in enumerate(self.layers) if info.kind == "recurrent"), None)
        self.probes = Probes(self.layers, self._acts, recurrent, root=self._inner)

    def _arm(self, step: int) -> None:
        """Attach the probes when ``step`` is sampled (compiled models: never)."""
        self._sampled = (step - 1) % self.every == 0
        if self._sampled and not self.compiled and self.active:
            self.probes.attach()

    def _header(self) -> None:
        if self._order_handles:
            for h in self._order_handles:
                h.remove()
            self._order_handles = []
            was_attached = bool(self.probes.handles)
            self.layers = order_by_calls(self._candidates, self._acts, self._calls)
            self._calls = []
            old = self.probes
            self._build_tables()
            self.probes.adopt(old)
            for info in self.layers:  # an activation function (F.relu(x), ...) where no module was seen
                if info.activation is None and info.module in old.functional_seen:
                    info.activation = old.functional_seen[info.module]
            if was_attached:
                old.detach()
        group = self.optimizer.param_groups[0]
        extra = {"producer": PRODUCER, "framework": "pytorch", "every": self.every,
                 "optimizer": {"name": type(self.optimizer).__name__, "lr": float(group.get("lr", math.nan))},
                 "model": type(_unwrap(self.model)[0]).__name__, "on_nonfinite": self.on_nonfinite,
                 "measured": self._measured()}
        if self._control is not None:
            extra["control"] = self._control.path.name
        self._writer.header(None, [info.entry() for info in self.layers], extra)
        self._header_written = True

    def _measured(self) -> str:
        if self.compiled:
            return ("torch.compile: grad_norm, weight_norm, update_ratio, the global norm and non-finite gradients; "
                    "delta_norm, activation statistics and the module where a NaN started need hooks inside the compiled graph and are not measured")
        return "all"

    # -- the step ---------------------------------------------------------------------------
    def _step(self, *args, **kwargs):
        if not self.active or self.closed:
            return self._original_step(*args, **kwargs)
        self._flush()  # the previous step's line, with the loss logged after it
        self._commands(self.steps)  # live remedies sent since: they act on this step's update
        n = self.steps + 1
        sampled = self._sampled
        if sampled:
            self.probes.detach()
            if not self._header_written:
                self._header()
        check_now = self.on_nonfinite != "record" or self.clip or sampled
        G = total = None
        if check_now and self.params:
            G = _norms([p.grad if p.grad is not None else torch.zeros((), device=p.device) for p in self.params])
            total = torch.linalg.vector_norm(G)
        bad = False
        where = None
        if self.on_nonfinite != "record" and total is not None:
            probe = self.probes.collect(G.device) if sampled and not self.compiled else None
            bad = not bool(torch.isfinite(total))
            if bad:
                where = self._where(probe.cpu().tolist() if probe is not None else None, G.cpu().tolist())
        clipped = False
        if self.clip and total is not None and not bad:
            clipped = bool(total > self.clip_norm)
            torch.nn.utils.clip_grads_with_norm_(self.params, self.clip_norm, total)
        if bad and self.on_nonfinite == "raise":
            self._record_nonfinite(n, where, skipped=True)
            self.close()
            raise NonFiniteError(f"step {n} produced a non-finite gradient, first at {where or 'an unknown module'}"
                                 + ("" if sampled else " (named from the gradients: outputs are checked on sampled steps only; every=1 checks all)"),
                                 n, where)
        before = self._copy_weights() if sampled else None
        result = None
        if not bad:
            result = self._original_step(*args, **kwargs)
        self.steps = n
        if bad:
            self._record_nonfinite(n, where, skipped=True)
        elif sampled:
            self._measure(n, G, total, before, clipped)
        self._arm(n + 1)
        return result

    def _copy_weights(self) -> list:
        """W_before of the weights, copied into a buffer kept from one sampled step to the next:
        the same peak memory as a fresh copy per sampled step, without allocating (and, on the
        CPU, page-faulting) it each time. Remade when a weight changed shape, type or device."""
        weights = [self.params[i].detach() for i in self._weight_ids]
        buffer = self._before
        if buffer is None or any(b.shape != w.shape or b.dtype != w.dtype or b.device != w.device
                                 for b, w in zip(buffer, weights)):
            buffer = self._before = [torch.empty_like(w) for w in weights]
        if buffer:
            torch._foreach_copy_(buffer, weights)
        return buffer

    def _where(self, probe, gnorms) -> str | None:
        """The first layer in forward order whose output is non-finite, else the last whose output
        gradient is, else the first whose weight gradient is."""
        k = Probes.PER_LAYER
        if probe is not None:
            for i, info in enumerate(self.layers):
                if probe[i * k + 5] < 1:
                    return info.name
            for i in reversed(range(len(self.layers))):
                if probe[i * k + 6] < 1:
                    return self.layers[i].name
        for li, pi in self._weight_pairs:
            if not math.isfinite(gnorms[pi]):
                return self.layers[li].name
        return None

    def _record_nonfinite(self, n: int, where, skipped: bool) -> None:
        if not self._header_written:
            self._header()
        L = len(self.layers)
        nan = [math.nan] * L
        line = {"step": n, "loss": math.nan, "grad_norm_total": math.nan, "clipped": False, "nonfinite": True,
                "nonfinite_layer": where, "skipped": skipped, "grad_norm": nan, "weight_norm": nan, "update_ratio": nan}
        self._pending = line
        self._flush()
        self._writer.event("nonfinite", n, time=self._time(), layer=where, action=self.on_nonfinite)

    def _measure(self, n: int, G, total, before, clipped: bool) -> None:
        dev = G.device if G is not None else torch.device("cpu")
        after = [self.params[i].detach() for i in self._weight_ids]
        W = _norms([p.detach() for p in self.params])
        if after:
            torch._foreach_sub_(before, after)  # in place: W_before - W_after, no second copy
        D = _norms(before) if after else torch.zeros(0, device=dev)
        L = len(self.layers)
        li, pi, di = (torch.tensor(ix, dtype=torch.long, device=dev) for ix in self._pair_index)
        zeros = torch.zeros(L, device=dev)
        grad_l = zeros.index_add(0, li, G[pi] ** 2).sqrt()
        w_l = zeros.index_add(0, li, W[pi] ** 2).sqrt()
        d_l = zeros.index_add(0, li, D[di] ** 2).sqrt()
        probe = self.probes.collect(dev) if not self.compiled else torch.zeros(0, device=dev)
        host = torch.cat((total.reshape(1), grad_l, w_l, d_l, G, W, probe.to(dev))).cpu().tolist()
        total_v = host[0]
        grad, weight, delta = host[1:1 + L], host[1 + L:1 + 2 * L], host[1 + 2 * L:1 + 3 * L]
        P = len(self.params)
        Gp, Wp = host[1 + 3 * L:1 + 3 * L + P], host[1 + 3 * L + P:1 + 3 * L + 2 * P]
        pr = host[1 + 3 * L + 2 * P:]
        k = Probes.PER_LAYER
        has = len(pr) >= L * k
        col = (lambda c: [pr[i * k + c] for i in range(L)]) if has else (lambda c: [math.nan] * L)
        line = {
            "step": n, "loss": math.nan, "grad_norm_total": total_v, "clipped": clipped,
            "grad_norm": grad, "weight_norm": weight,
            "update_ratio": [d / w if w > 0 else (0.0 if d == 0 else math.inf) for d, w in zip(delta, weight)],
            "delta_norm": col(0), "act_mean": col(1), "act_std": col(2), "dead_fraction": col(3), "saturation": col(4),
            "param_norms": {name: [Gp[j], Wp[j]] for name, j in self._other_names},
        }
        if has and len(pr) > L * k:
            line["time_delta_norm"] = pr[L * k:]
        if not math.isfinite(total_v) or (has and min(col(5) + col(6)) < 1):
            line["nonfinite"] = True
            line["skipped"] = False
            line["nonfinite_layer"] = self._where(pr if has else None, Gp)
        self._pending = line

    # -- live remedies ----------------------------------------------------------------------
    def _commands(self, n: int) -> None:
        """Apply the commands that arrived, recorded as changes after step ``n`` (before the
        update of step n + 1); pausing blocks here, inside ``optimizer.step()``, until resumed."""
        if self._control is None:
            return
        for cmd in self._control.read():
            self._apply(cmd, n)
        while self.paused and not self.closed:
            time.sleep(0.05)
            for cmd in self._control.read():
                self._apply(cmd, n)

    def _apply(self, cmd: dict, n: int) -> None:
        name = cmd["command"]
        if name == "pause":
            self.paused = not self.paused
            self._change(n, "train.paused", self.paused, name)
        elif name == "lr":
            factor = float(cmd.get("factor", 1.0))
            if not (math.isfinite(factor) and factor > 0):
                return
            for group in self.optimizer.param_groups:
                group["lr"] = group["lr"] * factor
            self._change(n, "train.lr", float(self.optimizer.param_groups[0]["lr"]), f"lr x{factor:g}")
        elif name == "clip":
            self.clip = not self.clip
            self._change(n, "train.clip", f"norm {self.clip_norm:g}" if self.clip else "none", name)
        elif name == "skip_nonfinite":
            self.on_nonfinite = "record" if self.on_nonfinite == "skip" else "skip"
            self._change(n, "train.on_nonfinite", self.on_nonfinite, name)

    def _change(self, n: int, key: str, value, command: str) -> None:
        if not self._header_written:
            self._header()
        self._flush()
        self._writer.event("change", n, time=self._time(), changed=[key], overrides={key: value}, mode="in_place",
                           command=command)

    # -- the user's side --------------------------------------------------------------------
    def _time(self) -> float:
        return time.monotonic() - self._t0

    def _flush(self) -> None:
        if self._pending is not None:
            line, self._pending = self._pending, None
            self._writer.step(_plain(line), time=self._time())

    def log(self, loss=None, **scalars) -> None:
        """The loss of the step just taken (a tensor or a number) and any other scalars
        (``x_<name>`` fields of the step line). Cheap on unsampled steps: nothing is read."""
        if self._pending is None:
            return
        if loss is not None:
            value = float(loss.detach().float()) if isinstance(loss, torch.Tensor) else float(loss)
            self._pending["loss"] = value
            if not math.isfinite(value) and self._pending.get("nonfinite_layer") is None and not self._pending.get("nonfinite"):
                self._pending.update(nonfinite=True, skipped=False, nonfinite_layer="loss")
        for key, value in scalars.items():
            self._pending[f"x_{key}"] = float(value.detach().float()) if isinstance(value, torch.Tensor) else value
        self._flush()

    def close(self, reason: str = "finished") -> None:
        """Restore the optimizer's step, remove the hooks, end the record (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.paused = False
        if not self.active:
            return
        self.optimizer.step = self._original_step
        self.probes.detach()
        self._before = None
        for h in self._order_handles:
            h.remove()
        try:
            if not self._header_written:
                self._header()
            self._flush()
            self._writer.event("end", self.steps, time=self._time(), reason=reason)
        except RecordError:
            pass
        self._writer.close()
        if self._control is not None:
            self._control.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close("finished" if exc_type is None else ("stopped" if exc_type is KeyboardInterrupt else "error"))
        return False


def _plain(obj):
    from gradtui.record import plain

    return plain(obj)
