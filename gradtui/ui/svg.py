"""Exported SVG screenshots that render the same in every viewer.

Rich writes one ``<text>`` element per run of equally styled cells, with ``textLength``
set to the run's width, spaces as ``&#160;``. librsvg (rsvg-convert, GNOME's viewers) drops
a run's leading and trailing spaces and then does not place the rest where the cells are,
so words of neighbouring runs render together (``vanishing-sigmoidstep 1,850``,
``aactivation``). :func:`fix_spacing` moves each run's leading spaces into its ``x`` and
drops trailing ones, so no element starts or ends with a space and every word sits at its
own cell in any renderer.
"""

from __future__ import annotations

import re

_TEXT = re.compile(r'<text (?P<head>[^>]*?)x="(?P<x>[0-9.]+)"(?P<mid>[^>]*?)textLength="(?P<len>[0-9.]+)"(?P<tail>[^>]*)>'
                   r'(?P<body>[^<]*)</text>')
_SPACE = "&#160;"
_CELL = re.compile(r"&#?[0-9a-zA-Z]+;|.", re.S)  # one character, or one entity


def _fix(match: re.Match) -> str:
    body = match["body"]
    cells = _CELL.findall(body)
    if not cells:
        return match[0]
    lead = next((i for i, c in enumerate(cells) if c != _SPACE), len(cells))
    if lead == len(cells):
        return ""  # only spaces: the background rectangles are separate elements
    trail = next(i for i, c in enumerate(reversed(cells)) if c != _SPACE)
    if not lead and not trail:
        return match[0]
    width = float(match["len"]) / len(cells)
    x = float(match["x"]) + lead * width
    kept = cells[lead: len(cells) - trail]
    return (f'<text {match["head"]}x="{x:g}"{match["mid"]}textLength="{len(kept) * width:g}"{match["tail"]}>'
            f'{"".join(kept)}</text>')


def fix_spacing(svg: str) -> str:
    """``svg`` with every text run's leading spaces moved into its position and trailing ones dropped."""
    return _TEXT.sub(_fix, svg)
