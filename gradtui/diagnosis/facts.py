"""What the diagnosis knows about the model behind a stream of steps.

A run gradtui trains gives its whole config; a record written by another program gives
only its layer table (names, kinds, activations) and perhaps thresholds. The rules and
their messages read :class:`ModelFacts`, so they work from either; remedies (config
changes) exist only when there is a gradtui config to change.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelFacts:
    """``alerts`` the thresholds (a gradtui AlertsConfig); ``activation`` the hidden layers'
    activation when one is known; ``recurrent`` whether a layer is recurrent; ``small_weights``
    says, when the config shows the weights start too small, how (e.g. "std 0.01");
    ``transformer`` whether the model has attention layers; ``residual`` whether its blocks
    have skip connections (None when unknown); ``config`` the gradtui config, or None for a
    model gradtui did not build."""

    alerts: object
    activation: str | None = None
    recurrent: bool = False
    small_weights: str = ""
    transformer: bool = False
    residual: bool | None = None
    config: object = None
    layers: tuple = ()  # the layer table (Layer objects), for remedies phrased as code
    framework: str = ""  # the header's "framework" ("pytorch": remedies are PyTorch code)
    lr: float | None = None  # the optimizer's learning rate, when the record says
    optimizer: str = ""  # the optimizer's class name, when the record says

    @classmethod
    def from_config(cls, cfg) -> "ModelFacts":
        from gradtui.diagnosis.remedies import init_too_small

        m = cfg.model
        small = ""
        if init_too_small(cfg):
            small = f"std {m.init_std:g}" if m.init == "normal" else f"{m.init} init"
        return cls(alerts=cfg.alerts, activation=m.activation, recurrent=cfg.is_recurrent, small_weights=small,
                   transformer=m.kind == "transformer", residual=bool(m.residual), config=cfg)

    @classmethod
    def from_layers(cls, layers, alerts: dict | None = None, source: str = "the record", header: dict | None = None) -> "ModelFacts":
        """From a layer table (Layer objects) and the header's thresholds (defaults for the rest),
        its ``framework`` and ``optimizer`` ({"name", "lr"}); ConfigError when a threshold is not allowed."""
        from gradtui.config.model import build_config

        thresholds = build_config({"alerts": dict(alerts or {})}, source=f"{source} (header \"alerts\")").alerts
        hidden = [layer.activation for layer in layers[:-1] if layer.activation]
        activation = Counter(hidden).most_common(1)[0][0] if hidden else None
        header = header or {}
        opt = header.get("optimizer") if isinstance(header.get("optimizer"), dict) else {}
        lr = opt.get("lr")
        return cls(alerts=thresholds, activation=activation, recurrent=any(layer.kind == "recurrent" for layer in layers),
                   transformer=any(layer.kind == "attention" for layer in layers),
                   layers=tuple(layers), framework=str(header.get("framework") or ""),
                   lr=float(lr) if isinstance(lr, (int, float)) else None, optimizer=str(opt.get("name") or ""))


def facts_of(cfg_or_facts) -> ModelFacts:
    """ModelFacts from a gradtui Config, or the ModelFacts given."""
    return cfg_or_facts if isinstance(cfg_or_facts, ModelFacts) else ModelFacts.from_config(cfg_or_facts)
