"""The immutable Config object and its validation.

A Config is four frozen sections plus the preset's text. Every way of making one
(TOML, ``with_overrides``, ``--set``) goes through :func:`build_config`, so a value
is checked once, in one place, with one message format.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import Any, Mapping

from gradtui.config.cnn_plan import image_side, problem
from gradtui.config.schema import (
    CNN_KINDS,
    GATED_ACTIVATIONS,
    IMAGE_TASKS,
    MLP_TASKS,
    RECURRENT_KINDS,
    RNN_ACTIVATIONS,
    SECTIONS,
    SEQUENCE_TASKS,
    TOKEN_TASKS,
    TOP_LEVEL_TEXT,
    TRANSFORMER_ACTIVATIONS,
    AlertsConfig,
    DataConfig,
    KeySpec,
    ModelConfig,
    TrainConfig,
    key_specs,
)


DIGITS_COUNT = 1797  # images in scikit-learn's digits (gradtui.tasks.images)


class ConfigError(ValueError):
    """A preset, override or command-line value that is not allowed; the message says why."""


def closest(word: str, candidates) -> str:
    """' Did you mean X?' for the closest candidate, or '' when none is close."""
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {match[0]}?" if match else ""


def unknown_key(dotted: str, where: str = "") -> ConfigError:
    """The one message for a key that is not in the schema: the closest key and every allowed one."""
    specs = key_specs()
    shown = repr(dotted) if not dotted or dotted != dotted.strip() else dotted
    allowed = "; ".join(f"[{section}] " + ", ".join(d.partition(".")[2] for d in specs if d.startswith(section + "."))
                        for section in SECTIONS)
    return ConfigError(f"{where}unknown key {shown}{closest(dotted, specs)} (keys are SECTION.NAME; allowed: {allowed})")


def flatten_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``{"model": {"depth": 3}}`` and ``{"model.depth": 3}`` alike -> ``{"model.depth": 3}`` (nested tables, as in TOML)."""
    flat: dict[str, Any] = {}
    for dotted, value in overrides.items():
        if isinstance(value, Mapping):
            for name, inner in flatten_overrides(value).items():
                flat[f"{dotted}.{name}"] = inner
        else:
            flat[str(dotted)] = value
    return flat


def plain_scalar(value: Any) -> Any:
    """NumPy scalars (np.int64, np.float32, np.bool_, np.str_) as the Python value they hold."""
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


@dataclass(frozen=True)
class Config:
    """A validated, immutable experiment configuration.

    ``explicit`` holds the dotted keys the preset or an override set, so keys that
    do not apply to the chosen model kind or task are refused only when a user set them.
    """

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    alerts: AlertsConfig = AlertsConfig()
    name: str = "custom"
    title: str = ""
    description: str = ""
    press: str = ""  # the keys to press in the interface, in a few words (the preset table's column)
    source: str = ""
    explicit: frozenset = frozenset()

    def get(self, dotted: str) -> Any:
        """The value of a dotted key such as ``"model.depth"``."""
        section, _, name = dotted.partition(".")
        if section not in SECTIONS or not hasattr(getattr(self, section), name):
            raise unknown_key(dotted)
        return getattr(getattr(self, section), name)

    def with_overrides(self, overrides: Mapping[str, Any]) -> "Config":
        """A new Config with keys replaced, validated like the TOML: dotted keys
        (``{"model.depth": 30}``) or nested tables (``{"model": {"depth": 30}}``)."""
        specs = key_specs()
        raw = self.to_dict(explicit_only=True)
        overrides = flatten_overrides(overrides)
        for dotted, value in overrides.items():
            section, _, name = dotted.partition(".")
            if dotted not in specs:
                raise unknown_key(dotted)
            raw.setdefault(section, {})[name] = value
        # Keys inherited from this config that stop applying (data.classes after a switch
        # away from spirals, say) fall back to their defaults; the overrides stay strict.
        kind = raw["model"].get("kind", ModelConfig.kind)
        task = raw["data"].get("task", DataConfig.task)
        for dotted in self.explicit - set(overrides):
            spec = specs[dotted]
            if (spec.kinds and kind not in spec.kinds) or (spec.tasks and task not in spec.tasks):
                section, _, name = dotted.partition(".")
                raw[section].pop(name, None)
        return build_config(raw, source=self.source, blame_source=False)

    def to_dict(self, explicit_only: bool = False) -> dict:
        """Nested plain dict (JSON- and TOML-ready) of the keys that apply to this model kind
        and task, so it loads back with :func:`build_config`; optionally only the keys a user set."""
        specs = key_specs()
        kind, task = self.model.kind, self.data.task
        out: dict = {k: getattr(self, k) for k in TOP_LEVEL_TEXT}
        for section in SECTIONS:
            values = dataclasses.asdict(getattr(self, section))
            if explicit_only:
                values = {k: v for k, v in values.items() if f"{section}.{k}" in self.explicit}
            out[section] = {k: v for k, v in values.items() if specs[f"{section}.{k}"].applies_to(kind, task)}
        return out

    @property
    def is_recurrent(self) -> bool:
        return self.model.kind in RECURRENT_KINDS


def parse_value(spec: KeySpec, text: str) -> Any:
    """Type a command-line string (``--set model.depth=30``) by the key's schema type."""
    text = text.strip()
    if spec.type is bool:
        lowered = text.lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise ConfigError(f"{spec.dotted} = {text!r} is not allowed: expected {spec.allowed()}")
    if spec.type is int:
        try:
            return int(text)  # exactly, however many digits (float() would round them)
        except ValueError:
            pass  # "1e3", "3.0", "3.5": read as a number below, so the message can say why it is refused
    if spec.type in (int, float):
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):  # not a number, or too large for a float: show what was typed
            shown = text if len(text) <= 40 else f"{text[:12]}...{text[-6:]} ({len(text)} characters)"
            raise ConfigError(f"{spec.dotted} = {shown!r} is not allowed: expected {spec.allowed()}")
        return int(number) if spec.type is int and number.is_integer() else number
    return text.strip("\"'")


def _check_value(spec: KeySpec, value: Any) -> Any:
    """Return the value coerced to the key's type, or raise a ConfigError naming what is allowed."""

    given = value = plain_scalar(value)

    def bad(why: str = "") -> ConfigError:
        shown = repr(given)
        if len(shown) > 40:
            shown = f"{shown[:12]}...{shown[-6:]} ({len(shown)} characters)"
        return ConfigError(f"{spec.dotted} = {shown} is not allowed: expected {spec.allowed()}{why}")

    if spec.type is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if spec.type is str:
        if not isinstance(value, str):
            raise bad()
        if spec.choices and value not in spec.choices:
            raise bad(closest(value, spec.choices))
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad()
    if spec.type is int:
        if isinstance(value, float) and not value.is_integer():
            raise bad()
        value = int(value)
    else:
        try:
            value = float(value)
        except OverflowError:  # an integer with hundreds of digits
            raise bad() from None
        if not math.isfinite(value):
            raise bad()
    if spec.low is not None and (value < spec.low or (spec.low_open and value == spec.low)):
        raise bad()
    if spec.high is not None and (value > spec.high or (spec.high_open and value == spec.high)):
        raise bad()
    return value


def build_config(raw: Mapping[str, Any], source: str = "", blame_source: bool = True) -> Config:
    """Validate a nested dict (as parsed from TOML) into a Config.

    Unknown sections or keys, wrong types, out-of-range values and keys that do not
    apply to the chosen model kind or task all raise ConfigError, prefixed with the
    source file's name when ``blame_source`` (not for overrides of an already valid file).
    """
    specs = key_specs()
    where = f"{source}: " if source and blame_source else ""
    sections: dict[str, dict] = {name: {} for name in SECTIONS}
    text: dict[str, str] = {}
    explicit = set()
    for top, body in raw.items():
        if top in TOP_LEVEL_TEXT:
            if not isinstance(body, str):
                raise ConfigError(f"{where}{top} = {body!r} is not allowed: expected a string")
            text[top] = body
            continue
        if top not in SECTIONS:
            allowed = ", ".join(list(TOP_LEVEL_TEXT) + [f"[{s}]" for s in SECTIONS])
            raise ConfigError(f"{where}unknown table or key {top!r} (allowed: {allowed}){closest(top, list(SECTIONS) + list(TOP_LEVEL_TEXT))}")
        if not isinstance(body, Mapping):
            raise ConfigError(f"{where}{top} must be a table ([{top}]), not {body!r}")
        for name, value in body.items():
            dotted = f"{top}.{name}"
            if dotted not in specs:
                raise unknown_key(dotted, where)
            try:
                sections[top][name] = _check_value(specs[dotted], value)
            except ConfigError as err:
                raise ConfigError(f"{where}{err}") from None
            explicit.add(dotted)
    cfg = Config(
        model=ModelConfig(**sections["model"]),
        data=DataConfig(**sections["data"]),
        train=TrainConfig(**sections["train"]),
        alerts=AlertsConfig(**sections["alerts"]),
        source=source,
        explicit=frozenset(explicit),
        **text,
    )
    try:
        _check_relations(cfg, specs)
    except ConfigError as err:
        raise ConfigError(f"{where}{err}") from None
    return cfg


def _check_relations(cfg: Config, specs: dict[str, KeySpec]) -> None:
    """Checks that involve more than one key."""
    kind, task = cfg.model.kind, cfg.data.task
    for dotted in sorted(cfg.explicit):
        spec = specs[dotted]
        if spec.kinds and kind not in spec.kinds:
            raise ConfigError(f"{dotted} applies only to model.kind {' / '.join(spec.kinds)}, not {kind!r}")
        if spec.tasks and task not in spec.tasks:
            raise ConfigError(f"{dotted} applies only to data.task {' / '.join(spec.tasks)}, not {task!r}")
    if cfg.is_recurrent and task not in SEQUENCE_TASKS:
        raise ConfigError(
            f"data.task = {task!r} is not allowed for model.kind {kind!r}: expected one of {', '.join(SEQUENCE_TASKS)}"
        )
    if kind == "transformer":
        _check_transformer(cfg)
    elif task in TOKEN_TASKS:
        raise ConfigError(f"data.task = {task!r} is not allowed for model.kind {kind!r}: token tasks ({', '.join(TOKEN_TASKS)}) need model.kind 'transformer'")
    if kind in CNN_KINDS:
        _check_cnn(cfg)
    elif kind == "mlp" and task not in MLP_TASKS:
        raise ConfigError(
            f"data.task = {task!r} is not allowed for model.kind 'mlp': expected one of {', '.join(MLP_TASKS)}"
        )
    if kind != "transformer" and cfg.model.activation == "gelu":
        raise ConfigError(f"model.activation = 'gelu' is not allowed for model.kind {kind!r}: gelu is for Transformer MLPs only")
    if kind == "rnn" and cfg.model.activation not in RNN_ACTIVATIONS:
        raise ConfigError(
            f"model.activation = {cfg.model.activation!r} is not allowed for a vanilla rnn: expected one of {', '.join(RNN_ACTIVATIONS)}"
        )
    if kind in ("lstm", "gru") and cfg.model.activation not in GATED_ACTIVATIONS:
        raise ConfigError(
            f"model.activation = {cfg.model.activation!r} is not allowed for {kind}: its cell uses tanh (expected tanh)"
        )
    samples = min(cfg.data.samples, DIGITS_COUNT) if task == "digits" else cfg.data.samples
    n_train = samples - int(round(samples * cfg.data.test_fraction))
    if cfg.train.batch_size > n_train:
        raise ConfigError(
            f"train.batch_size = {cfg.train.batch_size} is larger than the {n_train} training examples "
            f"(data.samples = {samples}, data.test_fraction = {cfg.data.test_fraction:g}); "
            f"allowed: 1 to {n_train}"
        )
    if n_train < 1 or samples - n_train < 1:
        raise ConfigError(
            f"data.samples = {samples} with data.test_fraction = {cfg.data.test_fraction:g} leaves "
            f"{n_train} training and {samples - n_train} held-out examples; both must be at least 1 "
            "(raise data.samples or move data.test_fraction away from 0 and 1)")


def _check_cnn(cfg: Config) -> None:
    """A CNN needs an image task, stages its depth can hold and images its stages do not shrink below the kernel."""
    task = cfg.data.task
    if task not in IMAGE_TASKS:
        raise ConfigError(f"data.task = {task!r} is not allowed for model.kind 'cnn': expected one of {', '.join(IMAGE_TASKS)}")
    why = problem(cfg.model.depth, cfg.model.stages, image_side(cfg))
    if why:
        raise ConfigError(why)
def _check_transformer(cfg: Config) -> None:
    """A Transformer needs a token task, relu or gelu, heads dividing the width and a
    positional table at least as long as the sequences."""
    m, d = cfg.model, cfg.data
    if d.task not in TOKEN_TASKS:
        raise ConfigError(f"data.task = {d.task!r} is not allowed for model.kind 'transformer': expected one of {', '.join(TOKEN_TASKS)}")
    if m.activation not in TRANSFORMER_ACTIVATIONS:
        raise ConfigError(f"model.activation = {m.activation!r} is not allowed for a Transformer: expected one of {', '.join(TRANSFORMER_ACTIVATIONS)}")
    if m.width % m.heads:
        raise ConfigError(f"model.width = {m.width} is not divisible by model.heads = {m.heads}: each head gets width/heads units; "
                          f"allowed heads for this width: {', '.join(str(h) for h in range(1, min(m.width, 256) + 1) if m.width % h == 0)}")
    if d.task == "recall" and d.seq_len < 3:
        raise ConfigError(f"data.seq_len = {d.seq_len} is too short for the recall task: it needs at least 3 (a key, its value and the query)")
    if d.seq_len > m.max_len:
        raise ConfigError(f"data.seq_len = {d.seq_len} is longer than the positional table (model.max_len = {m.max_len}): "
                          f"raise model.max_len to at least {d.seq_len} or shorten the sequences")
