"""The monitor's diagnoser: gradtui.diagnosis's Diagnoser, or a stand-in that raises no alerts.

The stand-in takes over for the rest of the run after the diagnosis raised an exception
(a diagnosis bug must not stop training); a fresh run gets a real Diagnoser again.
"""

from __future__ import annotations

from gradtui.diagnosis import Diagnoser


class NoDiagnoser:
    """Stands in after the diagnosis failed: no alerts."""

    def observe(self, rec):
        return []

    def active(self):
        return ()


def new_diagnoser(cfg, names):
    """A diagnoser for a run of cfg with these layer names."""
    return Diagnoser(cfg, list(names))
