"""Which remedies apply to the current config, and the config change each one makes.

A remedy already in effect (batch norm when batch norm is on, clipping when clipping is on,
a ReLU-family activation against vanishing when the net already uses one, ...) is not
suggested. Remedies are config changes; which key applies one is the interface's business
(gradtui.ui.keys.remedy_keys).
"""

from __future__ import annotations

from gradtui.config.cnn_plan import hidden_fan_in
from gradtui.diagnosis.alert import Remedy

RELU_FAMILY = ("relu", "leaky_relu", "prelu", "elu")
SATURATING = ("sigmoid", "tanh")
HE_FAMILY = ("he", "he_uniform")
XAVIER_FAMILY = ("xavier", "xavier_normal")
DEEP = 30  # from this depth on, residual connections and orthogonal init are offered early


def init_sigma_w2(init: str, width: int, init_std: float = 0.01, gain: float = 1.0) -> float:
    """sigma_w^2 = fan_in * Var(W) of a hidden weight with fan-in ``width`` under an init scheme."""
    base = {
        "standard": 1.0 / 3.0,  # U[-1/sqrt(n), 1/sqrt(n)] has Var = 1/(3n)
        "normal": width * init_std**2,
        "xavier": 1.0,
        "xavier_normal": 1.0,
        "he": 2.0,
        "he_uniform": 2.0,
        "lecun": 1.0,
        "orthogonal": 1.0,
    }.get(init, 1.0)
    return base * gain * gain


def target_init(activation: str) -> str:
    """The init scheme matched to an activation: He for the ReLU family, Xavier otherwise."""
    return "he" if activation in RELU_FAMILY else "xavier"


def _target_sigma_w2(activation: str) -> float:
    return 2.0 if activation in RELU_FAMILY else 1.0


def init_matched(cfg) -> bool:
    """True when the init scheme is the one matched to the activation, at gain 1."""
    m = cfg.model
    family = HE_FAMILY if m.activation in RELU_FAMILY else XAVIER_FAMILY + ("lecun", "orthogonal")
    return m.init in family and abs(m.init_gain - 1.0) < 1e-9


def init_too_small(cfg) -> bool:
    """Weights so small (sigma_w^2 below half the activation's matched value) that a new
    activation alone cannot keep the gradient: each layer still multiplies it by ~sigma_w^2/2."""
    m = cfg.model
    return init_sigma_w2(m.init, hidden_fan_in(m), m.init_std, m.init_gain) < 0.5 * _target_sigma_w2(m.activation)


def init_too_large(cfg) -> bool:
    m = cfg.model
    return init_sigma_w2(m.init, hidden_fan_in(m), m.init_std, m.init_gain) > 1.1 * _target_sigma_w2(m.activation)


# -- single remedies -------------------------------------------------------------------------
def _activation(to: str, why: str) -> Remedy:
    return Remedy(f"{to} activation: {why}", (("model.activation", to),))


def _init(cfg, why: str) -> Remedy:
    to = target_init(cfg.model.activation)
    name = {"he": "He", "xavier": "Xavier"}[to]
    return Remedy(f"{name} init ({why}; restarts)", (("model.init", to), ("model.init_gain", 1.0)))


def _batchnorm(why: str) -> Remedy:
    return Remedy(f"batch norm: {why}", (("model.batchnorm", True),))


def _orthogonal(why: str) -> Remedy:
    return Remedy(f"orthogonal init (Saxe et al. 2013): {why}; restarts", (("model.init", "orthogonal"), ("model.init_gain", 1.0)))


def wants_orthogonal(cfg) -> bool:
    """A deep linear (or near-linear tanh) MLP whose init has the right variance but is not
    orthogonal: the product of many random Gaussian matrices stretches some directions and
    squashes others (its singular values spread with depth), while orthogonal matrices keep
    every singular value at 1 whatever the depth."""
    m = cfg.model
    return (m.kind == "mlp" and m.activation in ("linear", "tanh") and m.init != "orthogonal"
            and m.depth >= DEEP and not init_too_small(cfg) and not init_too_large(cfg))


def _residual() -> Remedy:
    return Remedy("residual connections: the skip path carries the gradient past every layer", (("model.residual", True),))


WARMUP_STEPS = 200  # the warmup the w key and the Post-LN remedy turn on


def _warmup() -> Remedy:
    return Remedy(f"learning-rate warmup over {WARMUP_STEPS} steps: the first updates stay small while the "
                  "output layers' gradients are large (Xiong et al. 2020); restarts", (("train.warmup_steps", WARMUP_STEPS),))


def _pre_ln() -> Remedy:
    return Remedy("Pre-LN: LayerNorm inside each residual branch, so the gradient scale falls like 1/sqrt(depth) "
                  "and no warmup is needed (Xiong et al. 2020)", (("model.norm", "pre"),))


def _clip(why: str) -> Remedy:
    return Remedy(f"clip the global gradient norm (Pascanu et al. 2013): {why}", (("train.clip", "norm"),))


def _halve_lr(cfg, why: str) -> Remedy:
    lr = cfg.train.lr
    return Remedy(f"halve the learning rate ({lr:g} -> {lr / 2:g}): {why}", (("train.lr", lr / 2),))


def _fewer_layers(cfg) -> Remedy:
    d = cfg.model.depth
    return Remedy(f"one layer fewer ({d} -> {d - 1}): every layer multiplies the gradient once more; restarts", (("model.depth", d - 1),))


def _lstm(cfg) -> Remedy:
    change = [("model.kind", "lstm")]
    if cfg.model.activation != "tanh":
        change.append(("model.activation", "tanh"))
    return Remedy("LSTM cell (Hochreiter & Schmidhuber 1997): its cell state carries the gradient back through time; restarts", tuple(change))


def _recurrent_init(cfg) -> Remedy | None:
    m = cfg.model
    if m.kind == "rnn" and m.recurrent_init == "orthogonal" and m.recurrent_gain >= 1.0 and m.activation == "tanh":
        return Remedy("identity recurrent init with ReLU (Le, Jaitly & Hinton 2015): the state is copied forward unchanged at first; restarts",
                      (("model.recurrent_init", "identity"), ("model.activation", "relu"), ("model.recurrent_gain", 1.0)))
    if m.recurrent_init in ("orthogonal", "identity") and abs(m.recurrent_gain - 1.0) < 1e-9:
        return None
    return Remedy("orthogonal recurrent init (Saxe et al. 2013): all singular values 1, so the gradient keeps its size step to step; restarts",
                  (("model.recurrent_init", "orthogonal"), ("model.recurrent_gain", 1.0)))


# -- per alert kind -------------------------------------------------------------------------
def remedies_for(kind: str, cfg) -> tuple[Remedy, ...]:
    """The remedies for one alert kind that apply to ``cfg`` and are not already in effect."""
    m, t = cfg.model, cfg.train
    mlp = not cfg.is_recurrent  # a feed-forward net: MLP or CNN
    if m.kind == "transformer":
        return _transformer_remedies(kind, cfg)
    out: list[Remedy | None] = []
    if kind == "vanishing":
        tiny = mlp and init_too_small(cfg)
        if mlp and not m.batchnorm and tiny:  # works whatever the weights' scale: offer it first
            out.append(_batchnorm("re-scales every layer's inputs, so the tiny weights no longer matter"))
        deep = mlp and not m.residual and m.depth >= DEEP
        if deep:  # the skip path helps whatever the activation and the weights' scale
            out.append(_residual())
        if mlp and wants_orthogonal(cfg):
            out.append(_orthogonal("every singular value 1, so the gradient keeps its size through all the layers"))
        if mlp and m.activation not in RELU_FAMILY:
            why = "derivative 1 wherever a unit is active, no saturating tails (or leaky_relu/elu/prelu)"
            if tiny:
                why += "; with weights this small it needs i (He init) too"
            out.append(_activation("relu", why))
        if not init_matched(cfg):
            out.append(_init(cfg, "keeps the gradient's size layer to layer"))
        if mlp and not m.batchnorm and not tiny:
            out.append(_batchnorm("keeps every layer's inputs in the range where the activation has slope"))
        if mlp and not m.residual and 2 <= m.depth < DEEP:
            out.append(_residual())
        if m.kind == "rnn":
            out.append(_lstm(cfg))
            out.append(_recurrent_init(cfg))
        if m.depth > 1:
            out.append(_fewer_layers(cfg))
        if t.optimizer in ("sgd", "momentum"):
            out.append(Remedy("Adam optimiser (lr 0.001): per-parameter step sizes let layers with tiny gradients still move",
                              (("train.optimizer", "adam"), ("train.lr", 0.001))))
    elif kind == "vanishing_time":
        if m.kind == "rnn":
            out.append(_lstm(cfg))
        out.append(_recurrent_init(cfg))
        if m.kind == "lstm" and m.forget_bias < 2.0:
            out.append(Remedy(f"larger forget-gate bias ({m.forget_bias:g} -> {m.forget_bias + 1:g}): the cell forgets less per step; restarts",
                              (("model.forget_bias", m.forget_bias + 1.0),)))
        if t.clip == "none":
            out.append(_clip("guards the exploding side once gradients survive through time"))
    elif kind in ("exploding", "nonfinite"):
        if wants_orthogonal(cfg) and m.activation == "linear":  # the cause is the init's spread, not its scale
            out.append(_orthogonal("every singular value 1, so the product of the layers cannot stretch the gradient"))
        if init_too_large(cfg):  # the cause itself: offered first
            out.append(_init(cfg, "smaller initial weights, so each layer stops amplifying the gradient"))
        if t.clip == "none":
            out.append(_clip("caps every step's length whatever the gradient's size"))
        out.append(_halve_lr(cfg, "smaller steps stop the weights from overshooting and growing"))
        if mlp and not m.batchnorm:
            out.append(_batchnorm("renormalises every layer, so activations and gradients cannot grow layer after layer"))
        if m.kind in ("rnn", "lstm", "gru") and m.recurrent_gain > 1.0:
            out.append(Remedy(f"recurrent gain 1 ({m.recurrent_gain:g} -> 1): a spectral radius above 1 multiplies the gradient every step; restarts",
                              (("model.recurrent_gain", 1.0),)))
    elif kind == "dead":
        if m.activation == "relu":
            out.append(_activation("leaky_relu", "a small slope below zero, so no unit can die"))
            out.append(Remedy("prelu activation: a learned slope below zero", (("model.activation", "prelu"),)))
            out.append(Remedy("elu activation: smooth and non-zero below zero", (("model.activation", "elu"),)))
        if mlp and m.bias_init < 0:
            out.append(Remedy(f"start the biases at 0 (not {m.bias_init:g}), so units begin active; restarts", (("model.bias_init", 0.0),)))
        if not init_matched(cfg):
            out.append(_init(cfg, "pre-activations start at a healthy scale"))
        out.append(_halve_lr(cfg, "a large step can push a unit's bias so far negative that it never fires again"))
        if mlp and not m.residual and m.depth >= DEEP:  # deep plain ReLU nets degrade (He et al. 2016)
            out.append(Remedy("residual connections: each block adds its input back, so a unit dead in one layer "
                              "no longer cuts the signal and its gradient off for every layer below",
                              (("model.residual", True),)))
    elif kind == "saturation":
        if mlp and not m.batchnorm:
            out.append(_batchnorm("keeps the pre-activations out of the flat tails (Ioffe & Szegedy 2015)"))
        if m.activation in SATURATING and (mlp or m.kind == "rnn"):
            out.append(_activation("relu", "no flat tail on the positive side"))
        if not init_matched(cfg):
            out.append(_init(cfg, "pre-activations start with variance about 1, inside the slope"))
    return tuple(r for r in out if r is not None)


def _transformer_remedies(kind: str, cfg) -> tuple[Remedy, ...]:
    """Remedies for a Transformer: residual connections against collapse and vanishing; warmup
    and Pre-LN first for a Post-LN net without warmup; clipping and a smaller rate against
    explosions; gelu against dead ReLUs."""
    m, t = cfg.model, cfg.train
    out: list[Remedy] = []
    post_no_warmup = m.norm == "post" and t.warmup_steps == 0
    if kind in ("collapse", "vanishing") and not m.residual:
        out.append(Remedy("residual connections: the skip path keeps every token's own vector and carries the "
                          "gradient past each block (Dong et al. 2021)", (("model.residual", True),)))
    if kind in ("exploding", "nonfinite", "vanishing", "collapse") and post_no_warmup:
        out += [_warmup(), _pre_ln()]
    if kind in ("exploding", "nonfinite"):
        if t.clip == "none":
            out.append(_clip("caps every step's length whatever the gradient's size"))
        out.append(_halve_lr(cfg, "smaller steps stop the weights from overshooting"))
    if kind == "vanishing" and m.depth > 1:
        out.append(_fewer_layers(cfg))
    if kind == "dead" and m.activation == "relu":
        out.append(_activation("gelu", "smooth, with a small non-zero slope below zero"))
        out.append(_halve_lr(cfg, "a large step can push a unit's bias so far negative that it never fires again"))
    return tuple(out)


def best_remedies(alerts, applies=None, most: int = 2) -> tuple[Remedy, ...]:
    """The one or two remedies worth trying first for the active alerts (worst alert first).

    Each alert lists its remedies best first (see :func:`remedies_for`), so the ranking is:
    the worst alert's first remedy, then the next alert's first, then the rest in order, one
    per setting (the first setting a remedy changes), at most ``most``. ``applies(remedy)``
    keeps only the remedies that can be applied (the interface passes the ones it has a key
    for, :func:`gradtui.ui.keys.best_remedies`); by default every remedy that changes something.
    The interface marks these, and only these, with "◀ try".
    """
    def lead(remedy) -> str:
        return remedy.change[0][0]

    usable = [[r for r in getattr(alert, "remedies", ()) if r.change and (applies is None or applies(r))]
              for alert in alerts or ()]
    order = [rs[0] for rs in usable if rs] + [r for rs in usable for r in rs[1:]]  # each alert's best first
    out: list[Remedy] = []
    for remedy in order:
        if len(out) < most and all(lead(r) != lead(remedy) for r in out):
            out.append(remedy)
    return tuple(out)
