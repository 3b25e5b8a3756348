"""The diagnosis rules: pure condition functions over the current StepRecord and a small
rolling summary of recent steps (Trends), each returning a Finding with the measured figures
or None. Messages are written from a Finding by :func:`message`.

Cost: Trends.push is O(1) per step (scalar arithmetic and deques of at most N_BLOCKS block
averages); each rule reads a handful of array entries, so a full evaluation is a few
microseconds.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from gradtui.diagnosis.health import LOOSEN, is_vanishing  # one definition with the bars' row marks

N_BLOCKS = 10  # the trend window is split into this many blocks of window // N_BLOCKS steps
RECENT = 5  # steps the exploding-growth rule takes the minimum over


@dataclass
class Finding:
    """One rule's verdict on this step: the condition holds, with these figures."""

    kind: str
    severity: str
    layers: tuple
    figure: float
    sign: str  # which sign fired: "ratio", "update", "weights", "norm", "growth", "weight_growth", "oscillation", ...
    info: dict = field(default_factory=dict)


# -- rolling state ---------------------------------------------------------------------------
class Trends:
    """Block averages of the loss, the global gradient norm and the total weight norm over the
    last ``window`` steps, plus the gradient norm of the last few steps. O(1) per step.
    """

    def __init__(self, window: int):
        self.block = max(1, int(window) // N_BLOCKS)
        self.loss = deque(maxlen=N_BLOCKS)
        self.grad = deque(maxlen=N_BLOCKS)
        self.weight = deque(maxlen=N_BLOCKS)
        self.recent = deque(maxlen=RECENT)
        self._n = 0
        self._sum_loss = self._sum_grad = self._sum_weight = 0.0
        self.first_weight: np.ndarray | None = None  # per-layer weight norms at the first finite step
        self.blocks_done = 0
        self.grad_base = math.nan  # lowest block average of the gradient norm in the window
        self.loss_from = self.loss_to = math.nan  # first and last block average of the loss (full window)
        self.weight_rising = False  # total weight norm rose from every block to the next
        self.loss_up = self.loss_down = 0.0  # largest block-to-block rise and fall factors of the loss
        self.first_loss = math.nan  # the first block average of the loss (since the start or the last change)

    def push(self, loss: float, grad_total: float, weight_norm: np.ndarray) -> None:
        """Add one finite step."""
        self.recent.append(grad_total)
        if self.first_weight is None:
            self.first_weight = np.array(weight_norm, dtype=float)
        self._sum_loss += loss
        self._sum_grad += grad_total
        self._sum_weight += math.sqrt(float(np.dot(weight_norm, weight_norm)))
        self._n += 1
        if self._n == self.block:
            self.loss.append(self._sum_loss / self._n)
            self.grad.append(self._sum_grad / self._n)
            self.weight.append(self._sum_weight / self._n)
            self._n = 0
            self._sum_loss = self._sum_grad = self._sum_weight = 0.0
            self.blocks_done += 1
            if self.blocks_done == 1:
                self.first_loss = self.loss[-1]
            self._summarise()

    def _summarise(self) -> None:
        """Per-window figures, recomputed only when a block completes (every window/10 steps)."""
        self.grad_base = min(self.grad)
        full = len(self.loss) == N_BLOCKS
        self.loss_from, self.loss_to = (self.loss[0], self.loss[-1]) if full else (math.nan, math.nan)
        w = self.weight
        self.weight_rising = full and all(w[i + 1] > w[i] for i in range(N_BLOCKS - 1))
        up = down = 0.0
        ls = self.loss
        for i in range(len(ls) - 1):
            if ls[i] > 0 and ls[i + 1] > 0:
                r = ls[i + 1] / ls[i]
                up, down = max(up, r), max(down, 1.0 / r)
        self.loss_up, self.loss_down = up, down

    @property
    def full(self) -> bool:
        return len(self.loss) == N_BLOCKS


def loss_flat(tr: Trends, flat: float) -> tuple[bool, float, float]:
    """Whether the loss moved by less than ``flat`` (relative) between the first and last block."""
    a, b = tr.loss_from, tr.loss_to
    if a != a:  # window not full yet
        return False, a, b
    return abs(b - a) <= flat * max(abs(a), 1e-12), a, b


# -- the rules -------------------------------------------------------------------------------
def nonfinite(rec) -> Finding | None:
    """NaN or Inf in the loss, gradients or weights: the step was not applied."""
    if not rec.nonfinite:
        return None
    where = rec.nonfinite_layer or "loss"
    return Finding("nonfinite", "critical", (where,), math.nan, "nonfinite", {"layer": where, "loss": rec.loss})


def exploding(rec, tr: Trends, a) -> Finding | None:
    """Global gradient norm above a threshold, growing >= exploding_growth x within the window,
    total weight norm growing steadily, or the loss swinging up and down without settling at a
    level that is not already far below where it started (swing_level)."""
    g = rec.grad_norm_total
    if g > a.exploding_norm:
        return Finding("exploding", "warning", (), g, "norm", {"norm": g})
    if len(tr.recent) == RECENT and len(tr.grad) >= 2:
        base = tr.grad_base
        recent = min(tr.recent)
        if base > 0 and recent >= a.exploding_growth * base:
            return Finding("exploding", "warning", (), recent / base, "growth", {"norm": g, "from": base, "to": recent})
    if tr.full:
        w = tr.weight
        if tr.weight_rising and w[0] > 0 and w[-1] >= a.weight_growth * w[0]:
            return Finding("exploding", "warning", (), w[-1] / w[0], "weight_growth", {"from": w[0], "to": w[-1]})
        up, down = tr.loss_up, tr.loss_down
        swinging = up >= 1.0 + a.loss_swing and down >= 1.0 + a.loss_swing
        if swinging and max(tr.loss) >= a.swing_level * tr.first_loss:
            return Finding("exploding", "info", (), max(up, down), "oscillation",
                           {"low": min(tr.loss), "high": max(tr.loss), "up": up, "down": down})
    return None


def vanishing(rec, tr: Trends, a, names, first: int = 0, last: int | None = None) -> Finding | None:
    """The first hidden layer gets a tiny fraction of the last hidden layer's gradient (both
    delta_norm and grad_norm; grad_norm alone when a record has no delta_norm), or the early layers' updates are tiny while the output layer's
    are healthy, or the first layer's weights shrank toward 0 while the output layer's did not.
    A flat loss loosens the first two thresholds by LOOSEN."""
    n = len(names)
    if last is None:
        last = n - 2
    if last <= first:
        return None
    flat, loss_a, loss_b = loss_flat(tr, a.flat_loss)
    k = LOOSEN if flat else 1.0
    d0, dl = float(rec.delta_norm[first]), float(rec.delta_norm[last])
    g0, gl = float(rec.grad_norm[first]), float(rec.grad_norm[last])
    info = {"flat": flat, "loss_from": loss_a, "loss_to": loss_b, "depth": last - first + 1}
    known_delta = math.isfinite(d0) and math.isfinite(dl)  # a record may carry grad_norm alone
    if gl > 0 and (dl > 0 or not known_delta):
        rg = g0 / gl
        rd = d0 / dl if known_delta else rg
        ratio = a.vanishing_ratio * k
        if is_vanishing(g0, gl, ratio) and (not known_delta or is_vanishing(d0, dl, ratio)):
            info.update(delta_ratio=rd, grad_ratio=rg)
            return Finding("vanishing", "warning", (names[first], names[last]), rd, "ratio", info)
    early = rec.update_ratio[first : first + max(1, (last - first + 1) // 4)]
    u_early, u_out = float(early.max()), float(rec.update_ratio[-1])
    if u_early < a.update_ratio_min * k and u_out > a.update_ratio_healthy:
        info.update(update_early=u_early, update_out=u_out)
        return Finding("vanishing", "warning", (names[first], names[-1]), u_early, "update", info)
    w0 = tr.first_weight
    if w0 is not None and w0[first] > 0 and w0[-1] > 0:
        s0, s_out = float(rec.weight_norm[first]) / w0[first], float(rec.weight_norm[-1]) / w0[-1]
        if s0 < a.weight_shrink and s_out >= a.weight_shrink:
            info.update(shrink=s0, weight_from=float(w0[first]), weight_to=float(rec.weight_norm[first]))
            return Finding("vanishing", "warning", (names[first],), s0, "weights", info)
    return None


def vanishing_time(rec, a) -> Finding | None:
    """Recurrent nets: |dL/dh_1| below time_ratio of |dL/dh_T|."""
    tdn = rec.time_delta_norm
    if tdn is None or len(tdn) < 2:
        return None
    first, last = float(tdn[0]), float(tdn[-1])
    if not last > 0:
        return None
    r = first / last
    if r < a.time_ratio:
        T = len(tdn)
        reached = int(np.flatnonzero(np.asarray(tdn) > 0)[0])  # the earliest step the gradient reaches (0-based)
        per_step = (float(tdn[reached]) / last) ** (1.0 / (T - 1 - reached)) if reached < T - 1 else 0.0
        return Finding("vanishing_time", "warning", ("t=1", f"t={T}"), r, "time",
                       {"T": T, "per_step": per_step, "reached": reached + 1})
    return None


def collapse(rec, a) -> Finding | None:
    """Transformers: the last block's token spread ||X - 1 xbar^T||_F / ||X||_F below collapse_spread
    (every position carries nearly the same vector: rank collapse, Dong et al. 2021)."""
    spread = rec.token_spread
    if spread is None or len(spread) == 0 or not float(spread[-1]) < a.collapse_spread:
        return None
    low = np.asarray(spread) < a.collapse_spread
    first = int(np.flatnonzero(low)[0])
    entropy = rec.attention_entropy
    info = {"from_block": first, "depth": len(spread),
            "entropy": float(entropy[-1]) if entropy is not None else math.nan}
    return Finding("collapse", "warning", (f"block.{first}", f"block.{len(spread) - 1}"), float(spread[-1]), "spread", info)


def postln_cause(cfg) -> str:
    """For a Post-LN Transformer trained without warmup, what drives its trouble; else '' (also
    when there is no gradtui config, ``cfg`` None)."""
    if cfg is None:
        return ""
    m, t = cfg.model, cfg.train
    if m.kind != "transformer" or m.norm != "post" or t.warmup_steps > 0:
        return ""
    return (" Post-LN without warmup: at initialisation the gradients of the layers near the output are large and do "
            "not shrink with depth, so the first full-size updates are too large (Xiong et al. 2020); warm the "
            "learning rate up, or move LayerNorm into the residual branch (Pre-LN).")


def _layers_above(values: np.ndarray, threshold: float, names, hidden: int):
    """Hidden layers whose value exceeds threshold, worst first; (names, worst value)."""
    v = values[:hidden]
    if v.size == 0 or not v.max() > threshold:
        return None
    idx = np.flatnonzero(v > threshold)
    idx = idx[np.argsort(-v[idx], kind="stable")]
    return tuple(names[i] for i in idx), float(v[idx[0]])


def dead(rec, a, names) -> Finding | None:
    """Dying ReLU: a hidden layer's fraction of units that are zero on the whole batch above a threshold."""
    hit = _layers_above(rec.dead_fraction, a.dead_fraction, names, len(names) - 1)
    if hit is None:
        return None
    return Finding("dead", "warning", hit[0], hit[1], "dead")


def saturation(rec, a, names) -> Finding | None:
    """Sigmoid/tanh saturation: a hidden layer's fraction of units in the flat tails above a threshold."""
    hit = _layers_above(rec.saturation, a.saturation, names, len(names) - 1)
    if hit is None:
        return None
    return Finding("saturation", "warning", hit[0], hit[1], "saturation")


# -- messages --------------------------------------------------------------------------------
def fmt(x: float) -> str:
    """A figure for a sentence: 3e-09, 0.0021, 12, 4.5e+03."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return f"{x:.2g}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _vanishing_cause(facts, rec) -> str:
    a, activation = facts.alerts, facts.activation
    parts = []
    if facts.transformer:
        if facts.residual is False:
            return ("without residual connections every attention layer averages the tokens together, and the gradient "
                    "shrinks with the collapsing representations (Dong et al. 2021)")
        return "every block multiplies it by a factor below 1"
    if activation == "sigmoid":
        parts.append("each sigmoid passes at most a quarter of the gradient")
    elif activation == "tanh":
        if rec is not None and rec.saturation.size and float(rec.saturation[:-1].max()) > a.saturation:
            parts.append("the tanh units saturate and pass almost no gradient")
        else:
            parts.append("each tanh layer passes a bit less of the gradient")
    elif activation == "relu" and rec is not None and rec.dead_fraction.size and float(rec.dead_fraction[:-1].max()) > a.dead_fraction:
        parts.append("dead ReLUs pass no gradient at all")
    if facts.small_weights:
        what = facts.small_weights
        parts.append(f"the small weights ({what}) shrink it further" if parts else f"the small weights ({what}) shrink it at every layer")
    if not parts:
        parts.append("every layer multiplies it by a factor below 1")
    return " and ".join(parts)


def message(f: Finding, cfg, rec=None, predicted: float | None = None) -> str:
    """One plain sentence for a student, carrying the measured figure (and, for a Post-LN
    Transformer without warmup, a second naming that cause); ``cfg`` is a gradtui Config or the
    :class:`~gradtui.diagnosis.facts.ModelFacts` of a model gradtui did not build."""
    from gradtui.diagnosis.facts import facts_of

    facts = facts_of(cfg)
    text = _message(f, facts, rec, predicted)
    if f.kind in ("exploding", "nonfinite", "vanishing", "collapse"):
        text += postln_cause(facts.config)
    return text


def _message(f: Finding, facts, rec=None, predicted: float | None = None) -> str:
    a = facts.alerts
    i = f.info
    if f.kind == "nonfinite":
        return (f"The step produced NaN or Inf, first in {i['layer']}: the numbers overflowed, so the update was "
                "not applied and the last finite weights are kept; apply a remedy and resume.")
    if f.kind == "exploding":
        if f.sign == "norm":
            return (f"The gradient norm is {fmt(f.figure)} (alert above {fmt(a.exploding_norm)}): the "
                    "steps it drives are huge, so the next few can blow the weights up to NaN.")
        if f.sign == "growth":
            return (f"The gradient norm grew {fmt(f.figure)}x within {a.window} steps "
                    f"({fmt(i['from'])} -> {fmt(i['to'])}): the updates feed on themselves and the weights are heading for NaN.")
        if f.sign == "weight_growth":
            return (f"The weights grew {fmt(f.figure)}x within {a.window} steps and still grow "
                    f"({fmt(i['from'])} -> {fmt(i['to'])}): steps too large for the landscape keep overshooting outwards.")
        return (f"The loss swings between {fmt(i['low'])} and {fmt(i['high'])} within {a.window} steps without settling: "
                "the steps overshoot the minimum back and forth.")
    if f.kind == "vanishing":
        tail = ""
        if predicted is not None and math.isfinite(predicted):
            tail = f"; theory predicted {fmt(predicted)} at initialisation"
        if i.get("flat"):
            tail += f"; the loss has not moved ({fmt(i['loss_from'])} -> {fmt(i['loss_to'])})"
        if f.sign == "ratio":
            first, last = f.layers
            got = f"{fmt(f.figure)} of" if f.figure > 0 else "none of (it underflowed to 0)"
            return f"{first} gets {got} the gradient reaching {last}: {_vanishing_cause(facts, rec)}{tail}."
        if f.sign == "update":
            return (f"{f.layers[0]}'s weights change by {fmt(i['update_early'])} of their size per step while {f.layers[1]}'s change by "
                    f"{fmt(i['update_out'])}: the layers near the input barely learn because {_vanishing_cause(facts, rec)}{tail}.")
        return (f"{f.layers[0]}'s weights shrank to {_pct(f.figure)} of their starting size ({fmt(i['weight_from'])} -> {fmt(i['weight_to'])}) "
                f"while the output layer's did not: the gradient near the input is too small to hold them against decay{tail}.")
    if f.kind == "vanishing_time":
        if f.figure > 0:
            head = f"The gradient reaching t=1 is {fmt(f.figure)} of the gradient at t={i['T']}: it shrinks"
        else:
            head = (f"No gradient reaches t=1 to t={i['reached'] - 1}: on the way back from t={i['T']} it underflowed "
                    "to 0 after shrinking")
        return (f"{head} by a factor of about {i['per_step']:.2g} per step back in time, so the net cannot learn "
                "what happened early in the sequence.")
    if f.kind == "collapse":
        return (f"The tokens collapsed onto their mean: their spread ||X - mean||/||X|| is {fmt(f.figure)} after {f.layers[1]} "
                f"(below {fmt(a.collapse_spread)} from {f.layers[0]} on), so every position carries the same vector: "
                + ("each attention layer averages the tokens together" if facts.residual is not False else
                   "without residual connections each attention layer averages the tokens together (Dong et al. 2021)")
                + " and the gradient collapses with them.")
    if f.kind == "dead":
        more = f" (and {len(f.layers) - 1} more layer{'s' if len(f.layers) > 2 else ''} above {_pct(a.dead_fraction)})" if len(f.layers) > 1 else ""
        return (f"{_pct(f.figure)} of {f.layers[0]}'s units are dead{more}: their ReLUs output 0 for every example in the batch, "
                "so no gradient flows through them and they never recover.")
    if f.kind == "saturation":
        more = f" (and {len(f.layers) - 1} more layer{'s' if len(f.layers) > 2 else ''} above {_pct(a.saturation)})" if len(f.layers) > 1 else ""
        return (f"{_pct(f.figure)} of {f.layers[0]}'s {facts.activation or 'saturating'} units sit in the flat tails{more}: "
                "their derivative is nearly 0, so they pass almost no gradient back.")
    return f"{f.kind}: {fmt(f.figure)}"
