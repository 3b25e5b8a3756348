"""Sources of steps besides the live trainer: a finished record (replay) and a record another
process is writing (follow). :mod:`gradtui.sources.protocol` declares what every source offers."""

from gradtui.sources.protocol import FOLLOW, LIVE, REPLAY, Capabilities, Source

__all__ = ["Capabilities", "FOLLOW", "LIVE", "REPLAY", "Source"]
