"""Per-layer health: one definition for the bars' row marks and the vanishing alert.

A layer is *vanishing* when its norm is below ``ratio`` times the reference layer's, the
reference being the last hidden layer (the output layer's weight gradient has a different
scale: it sits right next to the loss). The vanishing alert (:func:`rules.vanishing`) fires
when the first hidden layer is vanishing by this test in both ‖dL/dW‖ and ‖dL/dz‖ for
``alerts.rise_steps`` steps; with a flat loss it uses ``ratio × LOOSEN``. The bars mark every
row with :func:`marks`, using the threshold the alert uses at that moment
(:func:`vanishing_threshold`), so a red row and the alert mean the same thing.
"""

from __future__ import annotations

import math

LOOSEN = 10.0  # a flat loss loosens the vanishing thresholds by this factor


def reference_index(n_layers: int) -> int:
    """Index of the reference layer: the last hidden layer (the only layer of a one-layer net)."""
    return max(0, n_layers - 2)


def is_vanishing(value: float, reference: float, ratio: float) -> bool:
    """value < ratio × reference, for a positive finite reference (else there is nothing to compare)."""
    return math.isfinite(reference) and reference > 0 and value < ratio * reference


def mark(value: float, reference: float, ratio: float, exploding_norm: float) -> str:
    """'nonfinite', 'exploding' (above exploding_norm), 'vanishing' (0, or below ratio × reference)
    or 'healthy'."""
    if not math.isfinite(value):
        return "nonfinite"
    if value > exploding_norm:
        return "exploding"
    if value <= 0:  # nothing reaches the layer at all (it underflowed, or its units are dead)
        return "vanishing"
    return "vanishing" if is_vanishing(value, reference, ratio) else "healthy"


def marks(values, ratio: float, exploding_norm: float, reference: int | None = None) -> list[str]:
    """The mark of every value of a profile against its reference entry (by default the last
    hidden layer; the vanishing-through-time alert compares with the last time step, -1)."""
    if not values:
        return []
    ref = values[reference_index(len(values)) if reference is None else reference]
    return [mark(v, ref, ratio, exploding_norm) for v in values]


def vanishing_threshold(alerts_cfg, active=()) -> float:
    """The ratio the vanishing alert uses now: ``vanishing_ratio``, loosened by LOOSEN while an
    active vanishing alert says the loss is flat (the rule's own loosening)."""
    ratio = alerts_cfg.vanishing_ratio
    for alert in active or ():
        if alert.kind == "vanishing" and dict(alert.extra).get("flat"):
            return ratio * LOOSEN
    return ratio
