"""LineStrips: a widget's text kept as one strip per line, redrawn line by line.

Textual renders a widget that returns a Text from ``render()`` whole on every
``refresh()``, through its general content pipeline (about 7 ms for the gradient bars at
120x40). Training needs the GIL the interface holds while it renders, and most lines of
a live panel stay the same from one frame to the next (the axis, the legend, the labels,
often the bars). A widget that keeps a :class:`LineStrips` (a :class:`LineWidget`) builds
its Text as before, hands it to :meth:`LineStrips.update`, refreshes only the lines that
changed, and answers Textual's ``render_line`` with :meth:`LineStrips.strip`. A line becomes
a strip by Rich's own rendering of that line over the widget's base style, cut at the width;
the result looks exactly as Textual's rendering of the whole text (tests/test_ui_redraw.py).

The widget keeps ``render()`` (tests and exports read its Text); Textual no longer calls it.
The component styles the text is drawn with are looked up once (:meth:`LineStrips.style`)
and kept, like the strips, until the widget's styles change (a theme, a breakpoint class).
"""

from __future__ import annotations

from functools import lru_cache

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget


class LineStrips:
    """The strips of one widget's text, rebuilt only where the text changed."""

    def __init__(self) -> None:
        self._texts: list[Text] = []
        self._strips: list[Strip | None] = []
        self._key: tuple | None = None  # (size, base style) the strips were drawn for
        self._styles: dict[str, Style] = {}

    def clear(self) -> None:
        """Forget everything (the widget's styles changed): the next update redraws every line."""
        self._texts, self._strips, self._key, self._styles = [], [], None, {}

    def style(self, widget, component: str) -> Style:
        """The widget's component style (``component`` is a COMPONENT_CLASSES name), looked up once."""
        style = self._styles.get(component)
        if style is None:
            style = self._styles[component] = widget.get_component_rich_style(component, partial=True)
        return style

    def current(self, size, style: Style) -> bool:
        """Whether the kept lines were drawn for this content size and base style."""
        return self._key == (size, style)

    def update(self, text: Text, size, style: Style) -> list[int] | None:
        """Take the widget's new text, drawn for a content ``size``; the lines (y) that
        changed, or None when all did (another size, base style or number of lines)."""
        lines = text.split("\n", allow_blank=True)
        key = (size, style)
        if key != self._key or len(lines) != len(self._texts):
            self._texts, self._strips, self._key = list(lines), [None] * len(lines), key
            return None
        changed = [y for y, (old, new) in enumerate(zip(self._texts, lines)) if old != new]
        for y in changed:
            self._texts[y], self._strips[y] = lines[y], None
        return changed

    def strip(self, y: int, console) -> Strip:
        """Line y as a strip, cut at the kept width (blank below the text). Like Textual's own
        rendering, each piece carries its offset (for mouse selection) and the line is not
        padded: Textual pads it to the widget's width with the background."""
        size, style = self._key if self._key is not None else (None, Style())
        width = size.width if size is not None else 0
        if not 0 <= y < len(self._strips):
            return Strip.blank(width, style)
        strip = self._strips[y]
        if strip is None:
            segments, x = [], 0
            for text, span_style, _ in self._texts[y].render(console):
                segments.append(Segment(text, with_offset(style + span_style, x, y)))
                x += len(text)
            strip = self._strips[y] = Strip(segments).crop(0, width)
        return strip


@lru_cache(maxsize=4096)
def with_offset(style: Style, x: int, y: int) -> Style:
    """``style`` marked with where its piece starts in the widget, as Textual marks its own text."""
    return style + Style.from_meta({"offset": (x, y)})


def refresh_lines(widget, lines: LineStrips) -> None:
    """Hand ``widget.render()`` to ``lines`` and refresh the widget's changed lines only."""
    if not widget.is_mounted or not widget.size:
        widget.refresh()
        return
    size = widget.content_region.size
    changed = lines.update(widget.render(), size, widget.visual_style.rich_style)
    if changed is None:
        widget.refresh()
    elif changed:
        widget.refresh(*(Region(0, y, size.width, 1) for y in changed))


def line_of(widget, lines: LineStrips, y: int) -> Strip:
    """Textual's ``render_line`` for a widget drawn through ``lines`` (redrawn whole first
    when the size or the base style changed since)."""
    size, style = widget.content_region.size, widget.visual_style.rich_style
    if not lines.current(size, style):
        lines.update(widget.render(), size, style)
    return lines.strip(y, widget.app.console)


def set_titles(widget, title: str | None = None, subtitle: str | None = None) -> None:
    """Set a widget's border title and subtitle (None leaves one as it is) when they change:
    Textual redraws the whole widget on every assignment, even of the same text."""
    shown = widget.__dict__.setdefault("_shown_titles", {})
    for name, text in (("border_title", title), ("border_subtitle", subtitle)):
        if text is not None and shown.get(name) != text:
            shown[name] = text
            setattr(widget, name, text)


class LineWidget(Widget):
    """A widget drawn line by line from its ``render()`` Text: call :meth:`redraw_lines` where a
    plain widget would call ``refresh()``, and take component styles from :meth:`component_style`."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._lines = LineStrips()

    def redraw_lines(self) -> None:
        """Repaint the lines whose text changed (all of them after a resize or a style change)."""
        refresh_lines(self, self._lines)

    def redraw_all(self, layout: bool = False) -> None:
        """Repaint every line (and lay the screen out again when ``layout``: the height may change)."""
        self._lines.clear()
        self.refresh(layout=layout)

    def component_style(self, component: str) -> Style:
        return self._lines.style(self, component)

    def render_line(self, y: int) -> Strip:
        return line_of(self, self._lines, y)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()
