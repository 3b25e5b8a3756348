"""Every key of the interface in one table: what it does, and the config change it makes.

The app builds its bindings, footer and help screen from :data:`KEYS`, so the three
cannot drift. Mitigation keys map the current Config to dotted-key overrides
(:func:`change_for`); the session decides whether the change carries the weights
over or restarts. Cycle orders come from :mod:`gradtui.config.schema`.

When an active alert names a remedy for the pressed key (say ``a`` → relu on the
vanishing-sigmoid preset), the key applies that remedy, so one press fixes what the
alert points at; otherwise it steps to the next value of the cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from gradtui.config.summary import change_text
from gradtui.control_channel import BY_KEY as REMOTE_COMMANDS
from gradtui.diagnosis import remedies as _remedies
from gradtui.sources.protocol import CHANGE, EXPORT, PAUSE, REMOTE, RESTART, SEEK, SPEED, STEP
from gradtui.config.schema import (
    FEEDFORWARD_KINDS,
    ACTIVATIONS,
    INITS,
    NORM_PLACEMENTS,
    OPTIMIZERS,
    RECURRENT_INITS,
    RECURRENT_KINDS,
    RNN_ACTIVATIONS,
    TRANSFORMER_ACTIVATIONS,
)

LR_MIN, LR_MAX = 1e-6, 1e3
DEPTH_MIN, DEPTH_MAX = 1, 1000
CELLS = RECURRENT_KINDS  # rnn -> lstm -> gru -> rnn


@dataclass(frozen=True)
class KeySpec:
    """One key: the Textual key name, its label, what it does, and help text.

    ``group`` is "mitigation" (changes the config), "run" (session control),
    "view" (how the screen shows things) or "app". ``helps`` says which problem a
    mitigation helps, in plain words; ``restarts`` marks changes that start fresh.
    ``kinds`` limits a key to some model kinds (``g`` only on recurrent models).
    """

    key: str  # Textual key name ("a", "plus", "space", "right_square_bracket", ...)
    label: str  # what the user types ("a", "+", "space", "]")
    action: str  # app action name, without the "action_" prefix
    short: str  # footer description
    does: str  # one sentence for the help screen
    helps: str = ""  # which problem it helps (mitigations only)
    group: str = "mitigation"
    restarts: bool = False
    kinds: tuple | None = None  # model kinds it applies to; None = all
    setting: str = ""  # the dotted config key it changes (mitigations)
    also: tuple = ()  # other settings its cycle changes on some models (i: the recurrent init)
    applies_remedy: bool = False  # an alert's remedy that changes ``setting`` is applied by this key
    needs: str = ""  # the source command it sends (gradtui.sources.protocol); "" = none (view, help, quit)
    hide_elsewhere: bool = False  # left out of the key bar (not just greyed) for other model kinds

    def __post_init__(self):
        if self.group == "mitigation" and not self.needs:
            object.__setattr__(self, "needs", CHANGE)

    @property
    def settings(self) -> tuple:
        return (self.setting,) + self.also if self.setting else self.also

    def applies_to(self, cfg) -> bool:
        """Whether the key makes sense for this config (greyed out / hidden otherwise)."""
        return cfg is None or self.kinds is None or cfg.model.kind in self.kinds


M = "mitigation"
KEYS: tuple[KeySpec, ...] = (
    KeySpec("a", "a", "mitigate('a')", "activation", "Switch the hidden activation (sigmoid → tanh → relu → leaky_relu → prelu → elu → linear).",
            "Vanishing gradients: a sigmoid's slope is at most 0.25, so every sigmoid layer shrinks the gradient by 4x or more; "
            "ReLU-family activations have slope 1 for positive inputs and pass the gradient on. Leaky ReLU, PReLU and ELU also "
            "avoid dying ReLUs (units stuck at zero that never learn again).", setting="model.activation", applies_remedy=True),
    KeySpec("i", "i", "mitigate('i')", "init", "Next weight initialisation scheme (standard, normal, Xavier, He, LeCun, orthogonal); restarts with fresh weights.",
            "Vanishing and exploding gradients: weights that start too small shrink the gradient at every layer, too large "
            "make it grow. Xavier (Glorot) and He scale the weights to the layer's width so the signal keeps its size.",
            restarts=True, setting="model.init", also=("model.recurrent_init",), applies_remedy=True),
    KeySpec("b", "b", "mitigate('b')", "batch norm", "Batch normalisation on/off: re-centre and re-scale every layer's inputs on each batch.",
            "Vanishing and exploding gradients: it keeps sigmoid and tanh inputs out of their flat tails (saturation) and "
            "keeps every layer's signal at a steady size.", kinds=FEEDFORWARD_KINDS, setting="model.batchnorm", applies_remedy=True),
    KeySpec("r", "r", "mitigate('r')", "residual", "Residual (skip) connections on/off: each layer outputs its input plus its own result.",
            "Vanishing gradients in deep networks: the skip path carries the gradient straight back to early layers "
            "(the idea behind ResNets). In a Transformer it also stops rank collapse, attention averaging all tokens "
            "into one vector (Dong, Cordonnier & Loukas 2021).", kinds=FEEDFORWARD_KINDS + ("transformer",), setting="model.residual",
            applies_remedy=True),
    KeySpec("l", "l", "mitigate('l')", "layer norm", "Move LayerNorm: post → pre → none (Transformers; weights carry over).",
            "Post-LN Transformers need warmup: at initialisation the output layers' gradients are large and do not shrink "
            "with depth; Pre-LN's fall like 1/sqrt(depth) (Xiong et al. 2020, On Layer Normalization in the Transformer).",
            kinds=("transformer",), setting="model.norm", hide_elsewhere=True, applies_remedy=True),
    KeySpec("w", "w", "mitigate('w')", "warmup", f"Learning-rate warmup on ({_remedies.WARMUP_STEPS} steps, linear) or off; restarts with fresh weights.",
            "Unstable first steps with Adam (Post-LN Transformers above all): warmup keeps the first updates small while "
            "the gradients settle.", restarts=True, kinds=("transformer",), setting="train.warmup_steps", hide_elsewhere=True,
            applies_remedy=True),
    KeySpec("c", "c", "mitigate('c')", "clip", "Gradient clipping on/off: scale the whole gradient down when its norm exceeds a threshold.",
            "Exploding gradients: it caps the size of each step so one huge gradient cannot throw the weights to infinity "
            "(NaN). It does not help vanishing gradients.", setting="train.clip", applies_remedy=True),
    KeySpec("g", "g", "mitigate('g')", "cell", "Next recurrent cell: rnn → lstm → gru; restarts. Recurrent presets only.",
            "Vanishing gradients through time: a plain RNN multiplies the gradient by the same matrix at every time step; "
            "LSTM and GRU gates keep an additive memory path so the error reaches early time steps.",
            restarts=True, kinds=RECURRENT_KINDS, setting="model.kind", applies_remedy=True),
    KeySpec("o", "o", "mitigate('o')", "optimiser", "Next optimiser: sgd → momentum → adam → rmsprop.",
            "Slow learning: adaptive optimisers (Adam, RMSProp) rescale each weight's step, so small gradients still move "
            "the weights; they do not remove the cause.", setting="train.optimizer"),
    KeySpec("plus", "+", "mitigate('+')", "lr x2", "Double the learning rate.",
            "A flat loss with healthy gradients: steps are too small.", setting="train.lr"),
    KeySpec("minus", "-", "mitigate('-')", "lr ÷2", "Halve the learning rate.",
            "Exploding gradients and an oscillating loss: steps are too large.", setting="train.lr", applies_remedy=True),
    KeySpec("right_square_bracket", "]", "mitigate(']')", "layer +1", "One hidden layer more; restarts.",
            "Shows how the problem grows with depth: every extra layer multiplies the gradient once more.",
            restarts=True, setting="model.depth"),
    KeySpec("left_square_bracket", "[", "mitigate('[')", "layer -1", "One hidden layer fewer; restarts.",
            "Vanishing and exploding gradients: fewer layers, fewer multiplications.", restarts=True, setting="model.depth",
            applies_remedy=True),
    KeySpec("space", "space", "toggle_pause", "pause", "Pause or resume training (play or pause a replay).", group="run", needs=PAUSE),
    KeySpec("s", "s", "step_once", "step", "One training step while paused.", group="run", needs=STEP),
    KeySpec("n", "n", "new_run", "new run", "New run: fresh weights from the next seed, same settings.", group="run", needs=RESTART),
    KeySpec("x", "x", "remote('x')", "skip NaN", REMOTE_COMMANDS["x"].does + " Sent to a gradtui.torch training process.",
            group="run", needs=REMOTE),
    KeySpec("d", "d", "toggle_delta", "grad/delta", "Bars show weight gradients ||dL/dW|| or the back-propagated error ||dL/dz||.", group="view"),
    KeySpec("t", "t", "toggle_time", "layer/time", "Bars show layers, or time steps ||dL/dh_t|| (recurrent models).",
            group="view", kinds=RECURRENT_KINDS),
    KeySpec("p", "p", "presets", "presets", "Pick another preset (Enter or a double click loads it), or open a .toml file by its path.",
            group="app", needs=CHANGE),
    KeySpec("e", "e", "export", "export", "Save an SVG screenshot and the JSON Lines record of the run so far.", group="app", needs=EXPORT),
    KeySpec("question_mark", "?", "help", "help", "This help.", group="app"),
    KeySpec("q", "q", "quit_app", "quit", "Quit.", group="app"),
)

# Playing a finished record back (gradtui replay): bound only where the source can seek.
# [ and ] mean slower and faster here; on a live run they change the depth.
PLAYBACK_KEYS: tuple[KeySpec, ...] = (
    KeySpec("left", "←", "seek(-1)", "back", "One step back (pauses the replay).", group="playback", needs=SEEK),
    KeySpec("right", "→", "seek(1)", "forward", "One step forward (pauses the replay).", group="playback", needs=SEEK),
    KeySpec("left_square_bracket", "[", "speed(-1)", "slower", "Play slower.", group="playback", needs=SPEED),
    KeySpec("right_square_bracket", "]", "speed(1)", "faster", "Play faster.", group="playback", needs=SPEED),
    KeySpec("less_than_sign", "<", "speed(-1)", "slower", "Play slower.", group="playback", needs=SPEED),
    KeySpec("greater_than_sign", ">", "speed(1)", "faster", "Play faster.", group="playback", needs=SPEED),
    KeySpec("home", "home", "seek_to(0)", "start", "The start of the record.", group="playback", needs=SEEK),
    KeySpec("end", "end", "seek_to(-1)", "end", "The end of the record.", group="playback", needs=SEEK),
)

BY_LABEL = {k.label: k for k in KEYS}  # the live keys (playback keys reuse [ and ])


def key_allowed(spec: KeySpec, caps) -> bool:
    """Whether the source can honour the key: its command, or (a gradtui.torch writer) the live
    remedy the key sends through the control channel."""
    return not spec.needs or caps.allows(spec.needs) or (caps.allows(REMOTE) and spec.label in REMOTE_COMMANDS)


def _next(values, current):
    values = tuple(values)
    if current not in values:
        return values[0]
    return values[(values.index(current) + 1) % len(values)]


def cycle_change(label: str, cfg) -> dict:
    """The overrides the key's own cycle makes from ``cfg`` (ignoring alerts); {} when n/a."""
    m, t = cfg.model, cfg.train
    recurrent = m.kind in RECURRENT_KINDS
    if label == "a":
        if m.kind in ("lstm", "gru"):
            return {}
        if m.kind == "transformer":
            return {"model.activation": _next(TRANSFORMER_ACTIVATIONS, m.activation)}
        return {"model.activation": _next(RNN_ACTIVATIONS if recurrent else ACTIVATIONS, m.activation)}
    if label == "i":
        if recurrent:
            return {"model.recurrent_init": _next(RECURRENT_INITS, m.recurrent_init)}
        return {"model.init": _next(INITS, m.init)}
    if label == "b":
        return {"model.batchnorm": not m.batchnorm} if m.kind in FEEDFORWARD_KINDS else {}
    if label == "r":
        return {} if recurrent else {"model.residual": not m.residual}
    if label == "l":
        return {"model.norm": _next(NORM_PLACEMENTS, m.norm)} if m.kind == "transformer" else {}
    if label == "w":
        return {"train.warmup_steps": 0 if t.warmup_steps else _remedies.WARMUP_STEPS}
    if label == "c":
        return {"train.clip": "norm" if t.clip == "none" else "none"}
    if label == "g":
        if not recurrent:
            return {}
        cell = _next(CELLS, m.kind)
        change = {"model.kind": cell}
        if cell in ("lstm", "gru"):
            change["model.activation"] = "tanh"
        return change
    if label == "o":
        return {"train.optimizer": _next(OPTIMIZERS, t.optimizer)}
    if label == "+":
        return {"train.lr": min(LR_MAX, t.lr * 2.0)}
    if label == "-":
        return {"train.lr": max(LR_MIN, t.lr / 2.0)}
    if label == "]":
        return {"model.depth": min(DEPTH_MAX, m.depth + 1)}
    if label == "[":
        return {"model.depth": max(DEPTH_MIN, m.depth - 1)}
    return {}


def keys_for_setting(setting: str) -> str:
    """The keys that change a setting, as the settings panel shows them: "a", "+ -", "] [" ."""
    return " ".join(spec.label for spec in KEYS if setting in spec.settings)


REMEDY_KEYS = {spec.setting: spec.label for spec in KEYS if spec.applies_remedy}  # setting -> key


def remedy_keys(remedies) -> tuple[str, ...]:
    """The key of each remedy of one alert ("" for none): a remedy is applied by the key whose
    setting its change starts with (activation by a, init by i, a lower learning rate by - ...),
    the first such remedy of the alert only, so one press applies one remedy."""
    taken, out = set(), []
    for remedy in remedies:
        first = remedy.change[0][0] if remedy.change else ""
        key = REMEDY_KEYS.get(first, "")
        if key in taken:
            key = ""
        taken.add(key)
        out.append(key)
    return tuple(out)


def best_remedies(alerts) -> tuple:
    """The one or two best remedies for the active alerts among those a key applies
    (:func:`gradtui.diagnosis.remedies.best_remedies`)."""
    return _remedies.best_remedies(alerts, applies=lambda remedy: remedy.change[0][0] in REMEDY_KEYS)


def try_keys(alerts) -> set:
    """The keys of :func:`best_remedies`: the remedies the alerts panel marks "◀ try"."""
    return {REMEDY_KEYS[remedy.change[0][0]] for remedy in best_remedies(alerts)}


def remedy_change(label: str, cfg, alerts=()) -> dict:
    """The change of the first active alert's remedy bound to this key that alters ``cfg``; {} if none."""
    for alert in alerts or ():
        remedies = getattr(alert, "remedies", ())
        for remedy, key in zip(remedies, remedy_keys(remedies)):
            if key != label:
                continue
            change = dict(remedy.change)
            if change and any(cfg.get(k) != v for k, v in change.items()):
                return change
    return {}


def change_for(label: str, cfg, alerts=()) -> dict:
    """Overrides the key makes: the alert's remedy if one names this key, else the key's cycle.

    Only keys that actually differ from ``cfg`` are returned; {} means the key does
    nothing for this config (``g`` on an MLP, ``+`` at the learning-rate ceiling).
    """
    change = remedy_change(label, cfg, alerts) or cycle_change(label, cfg)
    return {k: v for k, v in change.items() if cfg.get(k) != v}


def describe_change(change: dict) -> str:
    """'activation relu, batch norm on' for a notification, with the screen's labels."""
    return change_text(change)


def suggested_settings(alerts) -> set:
    """Dotted keys and key labels of the one or two best remedies for the active alerts
    (:func:`gradtui.diagnosis.remedies.best_remedies`), for the "◀ try" marks."""
    out = set()
    for remedy in best_remedies(alerts):
        out.add(REMEDY_KEYS[remedy.change[0][0]])
        for k, _ in remedy.change:
            out.add(k)
    return out
