"""What the diagnosis says: alerts, and the remedies each one names."""

from __future__ import annotations

from dataclasses import dataclass, field

SEVERITIES = ("info", "warning", "critical")
KINDS = ("nonfinite", "exploding", "vanishing", "vanishing_time", "collapse", "dead", "saturation")


@dataclass(frozen=True)
class Remedy:
    """One fix: a short label and the config change it makes.

    ``change`` holds dotted-key overrides, e.g. {"model.activation": "relu"}; applying it
    goes through the trainer's one change path, which decides carry-over or restart. The
    interface decides which key applies it (gradtui.ui.keys.remedy_keys).
    """

    label: str
    change: tuple = ()  # ((dotted_key, value), ...), hashable so Alerts stay immutable
    code: str = ""  # for a model gradtui did not build: the PyTorch code to write (gradtui.diagnosis.pytorch_remedies)

    def to_dict(self) -> dict:
        out = {"label": self.label, "change": dict(self.change)}
        if self.code:
            out["code"] = self.code
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Remedy":
        return cls(label=str(data.get("label", "")), change=tuple(dict(data.get("change") or {}).items()),
                   code=str(data.get("code") or ""))


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

    @classmethod
    def from_dict(cls, data: dict) -> "Alert":
        """The inverse of :meth:`to_dict` (an ``alert`` field of a record's alert event)."""
        def opt(name):
            value = data.get(name)
            return None if value is None else float(value)

        severity = data.get("severity", "warning")
        return cls(kind=str(data["kind"]), severity=severity if severity in SEVERITIES else "warning",
                   message=str(data.get("message", "")), layers=tuple(data.get("layers") or ()),
                   remedies=tuple(Remedy.from_dict(r) for r in data.get("remedies") or ()),
                   step=int(data.get("step", 0)), figure=opt("figure"), predicted=opt("predicted"))
