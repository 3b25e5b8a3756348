"""What the diagnosis says: alerts, and the remedies each one names."""

from __future__ import annotations

from dataclasses import dataclass, field

SEVERITIES = ("info", "warning", "critical")
KINDS = ("nonfinite", "exploding", "vanishing", "vanishing_time", "collapse", "dead", "saturation")


@dataclass(frozen=True)
class Remedy:
    """One fix: the interface key that applies it, a short label, and the config change it makes.

    ``change`` holds dotted-key overrides, e.g. {"model.activation": "relu"}; applying it
    goes through the session's one change path, which decides carry-over or restart.
    """

    key: str
    label: str
    change: tuple = ()  # ((dotted_key, value), ...), hashable so Alerts stay immutable

    def to_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "change": dict(self.change)}


@dataclass(frozen=True)
class Alert:
    """A diagnosed problem, with the figure that shows it and the remedies that apply now."""

    kind: str
    severity: str
    message: str
    layers: tuple = ()  # layer names, or ("t=1", ...) time steps for vanishing_time
    remedies: tuple = ()  # Remedy, ...
    step: int = 0  # the step at which it rose
    figure: float | None = None  # the measured number behind the message
    predicted: float | None = None  # the theory's figure for the same quantity (vanishing: attenuation at init), if it applies
    extra: tuple = field(default=(), compare=False)

    @property
    def rank(self) -> int:
        """Higher is worse: critical > warning > info."""
        return SEVERITIES.index(self.severity)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "layers": list(self.layers),
            "remedies": [r.to_dict() for r in self.remedies],
            "step": self.step,
            "figure": self.figure,
            "predicted": self.predicted,
        }
