"""The session's diagnoser: gradtui.diagnosis's Diagnoser, or a stand-in that raises no alerts.

The stand-in takes over when gradtui.diagnosis is missing from the tree (the session
works without it; ``Diagnoser`` is then None) and, for the rest of the run, after the
diagnosis raised an exception (a diagnosis bug must not stop training).
"""

from __future__ import annotations

try:  # the diagnosis lands in its own issue; the session works without it
    from gradtui.diagnosis import Diagnoser
except ImportError:  # pragma: no cover - depends on the tree
    Diagnoser = None


class NoDiagnoser:
    """Stands in when gradtui.diagnosis is not available: no alerts."""

    def observe(self, rec):
        return []

    def active(self):
        return ()


def new_diagnoser(cfg, names):
    """A diagnoser for a run of cfg with these layer names (the stand-in without the diagnosis)."""
    if Diagnoser is None:
        return NoDiagnoser()
    return Diagnoser(cfg, list(names))
