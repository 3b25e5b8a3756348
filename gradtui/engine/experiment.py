"""Experiment: one network, its data, its optimiser, stepped one batch at a time."""

from __future__ import annotations

import dataclasses

import numpy as np

from gradtui.config import Config, ConfigError
from gradtui.config.changes import restart_keys
from gradtui.engine.inputs import check_batch, check_dataset, check_param, check_steps
from gradtui.engine.train_loop import STAT_ROWS
from gradtui.engine.record import OPTIONAL, PER_LAYER, StepRecord
from gradtui.engine.schedule import is_scheduled, learning_rate
from gradtui.engine import update as kernel_update
from gradtui.engine.subnormals import flushed
from gradtui.engine.tiers import KERNELS, REFERENCE, TIERS, KernelWarmup, initial_tier
from gradtui.engine.update import CLIP_CODES, OPTIMIZER_CODES
from gradtui.tasks import make_dataset


def build_network(cfg: Config, data, dtype):
    """The network the config describes, for the dataset's input and output sizes."""
    if cfg.model.kind == "transformer":
        from gradtui.engine.transformer import TransformerNetwork

        return TransformerNetwork(cfg, data, dtype)
    if cfg.is_recurrent:
        from gradtui.engine.recurrent import RecurrentNetwork

        return RecurrentNetwork(cfg, data, dtype)
    if cfg.model.kind == "cnn":
        from gradtui.engine.cnn import CNNNetwork

        return CNNNetwork(cfg, data, dtype)
    from gradtui.engine.mlp import MLPNetwork

    return MLPNetwork(cfg, data.n_in, data.n_out, data.classification, dtype)


class Experiment:
    """A deterministic training run: the same config gives the same numbers.

    >>> exp = Experiment(load_config("vanishing-sigmoid"))
    >>> rec = exp.step()            # one optimiser step -> StepRecord

    ``tier``: "kernels" (the default) computes every step with the fused Numba kernels,
    compiling them on first use; "reference" with the plain NumPy reference tier
    (gradtui.engine.reference); "auto" starts on the reference tier at once and swaps to
    the kernels between two steps as soon as a background thread has compiled them
    (gradtui.engine.tiers). ``exp.tier`` says which tier computes the next step.

    Every method that takes arrays (``data``, :meth:`gradients`, :meth:`set_params`)
    checks them (gradtui.engine.inputs) and raises ValueError before a kernel runs.
    """

    def __init__(self, cfg: Config, data=None, tier: str = KERNELS):
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}, not {tier!r}")
        tier = initial_tier(cfg, tier)
        self.cfg = cfg
        self.dtype = np.dtype(cfg.train.dtype)
        if data is not None:
            check_dataset(data)
        self.data = data if data is not None else make_dataset(cfg)
        self._x_train = np.ascontiguousarray(self.data.x_train, dtype=self.dtype)
        self._y_train = np.ascontiguousarray(self.data.y_train if self.data.classification else self.data.y_train.astype(self.dtype))
        self.tier = KERNELS if tier == KERNELS else REFERENCE
        self.warmup = KernelWarmup(cfg, self.data) if tier == "auto" else None
        self.network = self._build(cfg)
        self.layout = self.network.layout
        self.theta = np.zeros(self.layout.size, dtype=self.dtype)
        self.network.init_params(self.theta, np.random.default_rng(cfg.train.seed))
        self._allocate_optimizer()
        self._order_rng = np.random.default_rng([cfg.train.seed, 1])
        self._order = self._order_rng.permutation(len(self._x_train))
        self._cursor = 0
        self.step_count = 0
        self._updates = 0  # applied updates, Adam's t
        self.schedule_step = 0  # applied updates since the learning-rate schedule (re)started
        self._train_at_lr = None  # (cfg.train, lr, cfg.train with that lr): see _train_settings

    def _build(self, cfg: Config):
        """The network for cfg on the current tier."""
        net = build_network(cfg, self.data, self.dtype)
        if self.tier == REFERENCE:
            from gradtui.engine.reference import reference_network

            return reference_network(net)
        return net

    @property
    def _ops(self):
        """Gradient norms and the optimiser update on the current tier."""
        if self.tier == REFERENCE:
            from gradtui.engine.reference import update

            return update
        return kernel_update

    def _flushed(self):
        """Flush subnormals for the kernels (the reference tier keeps NumPy's defaults:
        the flush's own kernels would have to compile first)."""
        return flushed(self.dtype if self.tier == KERNELS else np.float64)

    def _maybe_swap(self) -> None:
        """Swap to the kernels once the background warm-up has them ready (between two steps)."""
        if self.warmup is None or not self.warmup.done:
            return
        warmup, self.warmup = self.warmup, None
        if warmup.ready and self.tier == REFERENCE:
            self.tier = KERNELS
            self.network = self.network.net  # same layout, parameters and buffers

    def wait_for_kernels(self, timeout: float | None = None) -> bool:
        """Block until a background warm-up has finished, then swap; True when on the kernels."""
        if self.warmup is not None:
            self.warmup.wait(timeout)
            self._maybe_swap()
        return self.tier == KERNELS

    def _allocate_optimizer(self) -> None:
        n = self.layout.size
        self.grad = np.zeros(n, self.dtype)
        self._spare = np.zeros(n, self.dtype)
        self._state = [np.zeros(n, self.dtype) for _ in range(4)]
        self._segments = self.layout.segments()

    # -- the library API -------------------------------------------------------------------
    @property
    def layer_names(self) -> list[str]:
        """Statistic layers, input to output: "hidden.0", ..., "output" (or "rnn.0", ...)."""
        return self.network.layer_names

    @property
    def layers(self) -> list:
        """The layer table (gradtui.engine.record.Layer, input to output) a record's header carries."""
        return self.network.layers

    def params(self) -> dict[str, np.ndarray]:
        """Copies of every parameter, by name."""
        return self.layout.to_dict(self.theta)

    def set_params(self, params: dict) -> None:
        """Load some or all parameters back; names and shapes must match. Every value is
        checked before any is loaded, so a bad one changes nothing."""
        checked = {}
        for name, value in dict(params).items():
            if name not in self.layout:
                raise KeyError(f"no parameter {name!r}; parameters are {', '.join(self.layout.names)}")
            checked[name] = check_param(name, value, self.layout.view(self.theta, name))
        for name, value in checked.items():
            self.layout.view(self.theta, name)[:] = value

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        """The next training batch, without stepping."""
        rows = self._peek_rows()
        return self._x_train[rows], self._y_train[rows]

    def _peek_rows(self) -> np.ndarray:
        b = self.cfg.train.batch_size
        if self._cursor + b > len(self._order):
            self._order = self._order_rng.permutation(len(self._x_train))
            self._cursor = 0
        return self._order[self._cursor : self._cursor + b]

    def _take_batches(self, k: int) -> tuple[np.ndarray, tuple]:
        """Row indices of the next k batches (k, batch), and the order's state before them."""
        b = self.cfg.train.batch_size
        reshuffles = self._cursor + k * b > len(self._order)
        saved = (self._order, self._cursor, self._order_rng.bit_generator.state if reshuffles else None)
        if not reshuffles:  # the common case: k consecutive slices of the order, one view
            rows = self._order[self._cursor : self._cursor + k * b].reshape(k, b)
            self._cursor += k * b
            return rows, saved
        rows = np.empty((k, b), dtype=np.int64)
        for i in range(k):
            rows[i] = self._peek_rows()
            self._cursor += b
        return rows, saved

    def _rewind(self, saved: tuple, taken: int) -> None:
        """Undo _take_batches but for the first ``taken`` batches (after an early stop)."""
        self._order, self._cursor, state = saved
        if state is not None:
            self._order_rng.bit_generator.state = state
        self._take_batches(taken)

    def gradients(self, x, y) -> tuple[float, dict[str, np.ndarray]]:
        """Loss and gradients (same keys as params) on (x, y); no update, no side effects.

        ``x`` and ``y`` are shaped like :meth:`batch`'s (any number of examples, at least one);
        class labels must lie in 0 .. classes - 1. ValueError, naming the argument, otherwise."""
        x, y = check_batch(self.data, x, y)
        grad = np.zeros_like(self.theta)
        with self._flushed():
            loss = self.network.loss_and_grad(self.theta, grad, x, y, False, None)
        return float(loss), self.layout.to_dict(grad)

    def evaluate(self) -> dict[str, float]:
        """Mean loss (and accuracy, for classification) on the held-out split."""
        with self._flushed():
            loss, accuracy = self.network.evaluate(self.theta, self.data.x_test, self.data.y_test)
        out = {"loss": float(loss)}
        if accuracy is not None:
            out["accuracy"] = float(accuracy)
        return out

    def step(self) -> StepRecord:
        """One optimiser step on the next batch, with every statistic.

        A step whose loss, gradients or new parameters are not finite is not applied;
        its record has ``nonfinite=True`` and names the first layer, in the order the
        step computes them (activations input to output, then the loss, then the
        back-propagated errors output to input, then gradients and new weights), where
        a non-finite value appeared.
        """
        return self.run(1)[0]

    def run(self, steps: int) -> list[StepRecord]:
        """Up to ``steps`` optimiser steps, one record each; several steps per kernel call
        where the network has a fused kernel (the MLP, CNN and recurrent nets). Stops after a non-finite step,
        whose record is the last; the batch order then continues right after it.
        float32 steps treat subnormal numbers as zero (gradtui.engine.subnormals)."""
        if check_steps(steps) == 0:
            return []
        self._maybe_swap()
        if getattr(self.network, "flushes_itself", False):  # its fused loop sets the flush itself
            return self._run(steps)
        with self._flushed():
            return self._run(steps)

    def _run(self, steps: int) -> list[StepRecord]:
        batches, saved = self._take_batches(steps)
        n_layers = len(self.layer_names)
        table = np.zeros((steps, len(STAT_ROWS), n_layers))
        if steps > 1 and hasattr(self.network, "train_steps") and is_scheduled(self.cfg.train):
            records = []  # the fused kernel takes one learning rate: one step per call
            for k in range(steps):
                self._rewind(saved, k)
                records += self._run(1)
                if records[-1].nonfinite:
                    break
            return records
        if hasattr(self.network, "train_steps"):
            losses, totals = np.zeros(steps), np.zeros(steps)
            clipped = np.zeros(steps, dtype=np.bool_)
            # statistics beyond the per-layer table (a recurrent net's time profile), one row per step
            extra_stats = self.network.extra_stats()
            extras = {name: np.zeros((steps, *a.shape)) for name, a in extra_stats.items()} if extra_stats else None
            taken, flipped, status = self.network.train_steps(
                self.theta, self._spare, self._state, self.grad, self._segments, self._x_train, self._y_train,
                batches, self._train_settings(), self._updates + 1, table, losses, totals, clipped,
                **({"extras": extras} if extras else {}))
            if flipped:
                self.theta, self._spare = self._spare, self.theta
                s1, s2, s1_next, s2_next = self._state
                self._state = [s1_next, s2_next, s1, s2]
            self._updates += taken - (status != 0)
            self.schedule_step += taken - (status != 0)
            records = [self._step_record(table[k], float(losses[k]), float(totals[k]), bool(clipped[k]),
                                         failed=(k == taken - 1 and status != 0),
                                         extra={name: a[k] for name, a in extras.items()} if extras else None)
                       for k in range(taken)]
        else:
            records = []
            for k in range(steps):
                records.append(self._generic_step(batches[k], table[k]))
                if records[-1].nonfinite:
                    break
        if len(records) < steps:
            self._rewind(saved, len(records))
        return records

    @property
    def current_lr(self) -> float:
        """The learning rate of the next update (gradtui.engine.schedule)."""
        return learning_rate(self.cfg.train, self.schedule_step)

    def _train_settings(self):
        """cfg.train with the learning rate of the next update; the same object while neither
        changes (a fused loop then reuses its settings instead of rebuilding them each step)."""
        train = self.cfg.train
        lr = self.current_lr if is_scheduled(train) else train.lr
        cached = self._train_at_lr
        if cached is None or cached[0] is not train or cached[1] != lr:
            cached = self._train_at_lr = (train, lr, dataclasses.replace(train, lr=lr))
        return cached[2]

    def _generic_step(self, rows: np.ndarray, table: np.ndarray) -> StepRecord:
        """One step through the network's loss_and_grad and the shared update kernel."""
        stats = dict(zip(STAT_ROWS, table))
        extra = self.network.extra_stats()
        x, y = self._x_train[rows], self._y_train[rows]
        loss = float(self.network.loss_and_grad(self.theta, self.grad, x, y, True, {**stats, **extra} if extra else stats))
        ops = self._ops
        total = float(ops.gradient_norms(self.grad, self._segments, len(self.layer_names), stats["grad_norm"]))
        if not (np.isfinite(loss) and np.isfinite(total) and np.isfinite(table.sum())):
            return self._step_record(table, loss, total, False, failed=True, extra=extra)
        tr = self.cfg.train
        s1, s2, s1_out, s2_out = self._state
        clipped = bool(ops.apply_update(
            self.theta, self.grad, s1, s2, self._spare, s1_out, s2_out, self._segments,
            OPTIMIZER_CODES[tr.optimizer], self.current_lr, tr.momentum, tr.weight_decay,
            CLIP_CODES[tr.clip], tr.clip_threshold, total, self._updates + 1,
            stats["weight_norm"], stats["update_ratio"], stats["layer_finite"],
        ))
        if not np.isfinite(stats["layer_finite"].sum()):
            return self._step_record(table, loss, total, clipped, failed=True, extra=extra)
        self.theta, self._spare = self._spare, self.theta
        self._state = [s1_out, s2_out, s1, s2]
        self._updates += 1
        self.schedule_step += 1
        return self._step_record(table, loss, total, clipped, extra=extra)

    def _step_record(self, table: np.ndarray, loss: float, total: float, clipped: bool,
                failed: bool = False, extra: dict | None = None) -> StepRecord:
        """The StepRecord of the next step from its statistics table (rows STAT_ROWS)."""
        self.step_count += 1
        bad = None
        if failed:
            rows = dict(zip(STAT_ROWS, table))
            bad = _first_nonfinite(self.layer_names, rows, loss, total)
            if bad is None:  # finite until the update: the first layer whose new weights are not
                bad = self.layer_names[int(np.flatnonzero(~np.isfinite(rows["layer_finite"]))[0])]
            rows["weight_norm"][:] = self._weight_norms()
            rows["update_ratio"][:] = 0.0
        # the per-layer rows by position and the optional statistics only when there are any:
        # a step's record is built once per step, after a kernel call that left the caches cold
        return StepRecord(
            step=self.step_count, loss=loss, grad_norm_total=total, clipped=clipped,
            **dict(zip(PER_LAYER, [table[i] for i in _PER_LAYER_ROWS])),
            nonfinite=bad is not None, nonfinite_layer=bad,
            **({name: extra.get(name) for name in OPTIONAL} if extra else {}),
        )

    # -- swaps -----------------------------------------------------------------------------
    def reconfigure(self, cfg: Config) -> None:
        """Apply a change whose weights carry over (activation, batch norm, residual, clipping,
        optimiser, learning rate ...) in place: parameters keep their values bit for bit,
        new ones start fresh (gamma 1, beta 0, alpha prelu_init), the optimiser state
        carries over unless the optimiser changed. Changes that need fresh weights raise
        ConfigError; build a new Experiment for those.
        """
        blocked = restart_keys(self.cfg, cfg)
        if blocked:
            raise ConfigError(f"changing {', '.join(blocked)} needs a restart with fresh weights")
        old_params, old_layout = self.params(), self.layout
        old_state = [old_layout.to_dict(s) for s in self._state[:2]]
        old_buffers = {k: v.copy() for k, v in self.network.buffers().items()}
        keep_state = cfg.train.optimizer == self.cfg.train.optimizer
        self.cfg = cfg
        self.network = self._build(cfg)
        if self.warmup is not None and self.warmup.cfg.model.kind != cfg.model.kind:
            self.warmup = KernelWarmup(cfg, self.data)
        self.layout = self.network.layout
        self.theta = np.zeros(self.layout.size, dtype=self.dtype)
        self.network.init_params(self.theta, np.random.default_rng(cfg.train.seed))
        self.set_params({k: v for k, v in old_params.items() if k in self.layout})
        self._allocate_optimizer()
        if keep_state:
            for buf, saved in zip(self._state[:2], old_state):
                for name, value in saved.items():
                    if name in self.layout:
                        self.layout.view(buf, name)[:] = value
        else:
            self._updates = 0
        for name, value in self.network.buffers().items():
            if name in old_buffers and old_buffers[name].shape == value.shape:
                value[:] = old_buffers[name]

    def save_state(self) -> dict:
        """A copy of everything training changes: parameters, optimiser state, the network's
        buffers (batch norm's running statistics), step and update counters. Restore it with
        :meth:`load_state` on this Experiment as long as its config has not changed since."""
        return {
            "cfg": self.cfg,
            "theta": self.theta.copy(),
            "state": [s.copy() for s in self._state[:2]],
            "buffers": {k: v.copy() for k, v in self.network.buffers().items()},
            "step": self.step_count,  # when it was saved, for messages
            "updates": self._updates,
            "schedule_step": self.schedule_step,
        }

    def load_state(self, saved: dict) -> None:
        """Return the weights, optimiser and buffers to a state from :meth:`save_state`.

        The step counter and the batch order keep going forward, so steps stay numbered
        in the order they were taken."""
        if saved["cfg"] != self.cfg:
            raise ValueError("this state was saved under another config")
        theta = check_param("theta", saved["theta"], self.theta)
        state = [check_param(f"state[{i}]", value, buf) for i, (buf, value) in enumerate(zip(self._state[:2], saved["state"]))]
        buffers = {name: check_param(name, saved["buffers"][name], value) for name, value in self.network.buffers().items()}
        self.theta[:] = theta
        for buf, value in zip(self._state[:2], state):
            buf[:] = value
        for name, value in self.network.buffers().items():
            value[:] = buffers[name]
        self._updates = check_steps(saved["updates"])
        self.schedule_step = check_steps(saved.get("schedule_step", self._updates))

    def _weight_norms(self) -> np.ndarray:
        norms = np.zeros(len(self.layer_names))
        for i, name in enumerate(self.layout.names):
            if self.layout.weight[i]:
                norms[self.layout.layer_index[i]] += float(np.sum(self.layout.view(self.theta, name).astype(np.float64) ** 2))
        return np.sqrt(norms)


_PER_LAYER_ROWS = tuple(STAT_ROWS.index(name) for name in PER_LAYER)  # their rows of a statistics table


def _first_nonfinite(layers, stats, loss, total) -> str | None:
    """Where a non-finite value first appeared, in the order the step computes things."""
    forward = ~(np.isfinite(stats["act_mean"]) & np.isfinite(stats["act_std"]))
    if forward.any():
        return layers[int(np.flatnonzero(forward)[0])]
    if not np.isfinite(loss):
        return "loss"
    backward = ~np.isfinite(stats["delta_norm"])
    if backward.any():
        return layers[int(np.flatnonzero(backward)[-1])]
    bad_grad = ~np.isfinite(stats["grad_norm"])
    if bad_grad.any():
        return layers[int(np.flatnonzero(bad_grad)[-1])]
    if not np.isfinite(total):
        return layers[-1]
    return None
