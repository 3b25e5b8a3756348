"""One-line descriptions of a config, shared by the interface's header and `gradtui run`."""

from __future__ import annotations

from gradtui.config.cnn_plan import image_side


def fmt_short(value) -> str:
    """Human number for settings: 0.1, 0.0025, 1e-05."""
    try:
        return f"{float(value):.3g}"
    except (TypeError, ValueError):
        return str(value)


# the name each setting goes by on screen (settings panel, status line, the ◆ legend)
SETTING_LABELS = {
    "model.kind": "cell", "model.activation": "activation", "model.init": "init", "model.init_gain": "init gain",
    "model.init_std": "init std", "model.batchnorm": "batch norm", "model.residual": "residual",
    "model.recurrent_init": "rec. init", "model.recurrent_gain": "rec. gain", "model.forget_bias": "forget bias",
    "model.bias_init": "bias init", "model.depth": "depth", "model.width": "width", "train.clip": "clipping",
    "train.clip_threshold": "clip at", "train.optimizer": "optimiser", "train.lr": "learn rate", "train.seed": "seed",
    "model.norm": "layer norm", "train.warmup_steps": "warmup", "train.schedule": "schedule",
}


def setting_label(key: str) -> str:
    """'model.batchnorm' -> 'batch norm' (a key without a label: its last part, spaced)."""
    return SETTING_LABELS.get(key, key.rsplit(".", 1)[-1].replace("_", " "))


def setting_value(value) -> str:
    """A setting's value as the screen shows it: on/off, 0.05, relu."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return fmt_short(value)
    return str(value)


def change_text(changes) -> str:
    """'batch norm on, learn rate 0.05' for ((dotted key, new value), ...) or a dict."""
    items = changes.items() if isinstance(changes, dict) else changes
    return ", ".join(f"{setting_label(k)} {setting_value(v)}" for k, v in items)


def init_text(cfg) -> str:
    m = cfg.model
    if m.init == "normal":
        text = f"normal({fmt_short(m.init_std)})"
    else:
        text = m.init
    if m.init_gain != 1.0:
        text += f"×{fmt_short(m.init_gain)}"
    return text


def clip_text(cfg) -> str:
    t = cfg.train
    return "no clip" if t.clip == "none" else f"clip {t.clip}({fmt_short(t.clip_threshold)})"


def schedule_text(cfg) -> str:
    """'lr 0.001', or with a schedule 'lr 0.001 warmup 100 cosine'."""
    t = cfg.train
    text = f"lr {fmt_short(t.lr)}"
    if t.warmup_steps:
        text += f" warmup {t.warmup_steps}"
    if t.schedule != "constant":
        text += f" {t.schedule}"
    return text


def model_summary(cfg) -> str:
    """'mlp 20x64 sigmoid · init normal(0.01) · sgd lr 0.1 · no BN · no residual · no clip'."""
    return " · ".join(summary_parts(cfg))


def summary_parts(cfg) -> list[str]:
    """The parts of :func:`model_summary`, so a narrow screen can drop whole parts, never cut a number."""
    if cfg is None:
        return []
    m, t = cfg.model, cfg.train
    opt = f"{t.optimizer} {schedule_text(cfg)}"
    if m.kind == "transformer":
        norm = "no LN" if m.norm == "none" else f"{m.norm}-LN"
        parts = [
            f"transformer {m.depth}x{m.width} {m.heads} heads {m.activation} T={cfg.data.seq_len}",
            norm,
            "residual" if m.residual else "no residual",
            f"init {init_text(cfg)}",
            opt,
            clip_text(cfg),
        ]
    elif m.kind == "mlp":
        parts = [
            f"mlp {m.depth}x{m.width} {m.activation}",
            f"init {init_text(cfg)}",
            opt,
            "BN" if m.batchnorm else "no BN",
            "residual" if m.residual else "no residual",
            clip_text(cfg),
        ]
    elif m.kind == "cnn":
        side = image_side(cfg)
        parts = [
            f"cnn {m.depth}x{m.width} {m.activation}" + (f" {m.stages} stages" if m.stages > 1 else ""),
            f"{side}x{side} {cfg.data.task}",
            f"init {init_text(cfg)}",
            opt,
            "BN" if m.batchnorm else "no BN",
            "ResNet" if m.residual else "no residual",
            clip_text(cfg),
        ]
    else:
        act = f" {m.activation}" if m.kind == "rnn" else ""
        gain = f"×{fmt_short(m.recurrent_gain)}" if m.recurrent_gain != 1.0 else ""
        parts = [
            f"{m.kind} {m.depth}x{m.width}{act} T={cfg.data.seq_len}",
            f"recurrent init {m.recurrent_init}{gain}",
            opt,
            clip_text(cfg),
        ]
    return parts


def layers_summary(layers) -> str:
    """'3 layers: conv relu 3→16 · conv relu 16→32 · output 32→10', from a record's layer table
    (for a model gradtui did not build, which has no config)."""
    if not layers:
        return ""
    parts = []
    for layer in layers:
        text = layer.kind
        if layer.activation:
            text += f" {layer.activation}"
        if layer.fan_in is not None and layer.fan_out is not None:
            text += f" {layer.fan_in}→{layer.fan_out}"
        parts.append(text)
    return f"{len(layers)} layers: " + " · ".join(parts)
