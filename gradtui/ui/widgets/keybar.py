"""KeyBar: the footer. Every key with a short label, wrapped over as many lines as needed.

Textual's own Footer scrolls sideways when the keys do not fit, which hides ``?`` and
``q`` at 80 columns; this bar wraps instead, so every key is always visible. Keys
that do not apply to the current model (``g`` and ``t`` on an MLP) are greyed out. Keys
the source cannot honour (the mitigation keys on a replay, where ``[``/``]`` mean speed)
are left out, and one greyed item says why; a replay adds its playback keys in front.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from gradtui.sources.protocol import LIVE, SEEK
from gradtui.ui.keys import KEYS, key_allowed

# pairs shown as one item, and the short labels used when space is tight
PAIRS = {"+": ("+/-", "lr ×2/÷2", "lr"), "]": ("]/[", "depth ±1", "depth")}
SKIP = {"-", "["}
SOURCE_NOUNS = {"replay": "a finished record", "follow": "another process trains"}
PLAYBACK_ITEMS = (("←/→", "step"), ("[/]", "speed"), ("home/end", "start/end"))
SHORT = {"activation": "act", "batch norm": "BN", "residual": "res", "optimiser": "opt", "new run": "new",
         "grad/delta": "δ view", "layer/time": "time", "presets": "preset"}


class KeyBar(Widget, can_focus=False):
    """All keys and what they do, greyed when they do not apply."""

    COMPONENT_CLASSES = {"key-bar--key", "key-bar--label", "key-bar--disabled"}
    """The key itself, its label, and a key that does not apply now."""

    DEFAULT_CSS = """
    KeyBar {
        height: auto;
        max-height: 3;
        background: $panel;
        padding: 0 1;
        text-wrap: nowrap;
    }
    KeyBar > .key-bar--key { color: $accent; text-style: bold; }
    KeyBar > .key-bar--label { color: $text; }
    KeyBar > .key-bar--disabled { color: $text-disabled; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._kind = "mlp"
        self._compact = False
        self._caps = LIVE

    def show(self, cfg, capabilities=LIVE) -> None:
        """Grey out keys that do not apply to this config's model kind or that the source
        (``capabilities``, gradtui.sources.protocol) cannot honour."""
        kind = cfg.model.kind if cfg is not None else "mlp"
        if kind != self._kind or capabilities != self._caps:
            self._kind, self._caps = kind, capabilities
            self.refresh(layout=True)

    def on_resize(self) -> None:
        compact = self.size.width < 110
        if compact != self._compact:
            self._compact = compact
            self.refresh(layout=True)

    def _style(self, name: str):
        return self.get_component_rich_style(f"key-bar--{name}", partial=True)

    def render(self) -> Text:
        width = max(20, self.content_region.width or self.size.width or 80)
        caps = self._caps
        items = [(label, short, True) for label, short in PLAYBACK_ITEMS] if caps.allows(SEEK) else []
        for spec in KEYS:
            if spec.label in SKIP or (spec.hide_elsewhere and self._kind not in spec.kinds):
                continue
            label, short = spec.label, spec.short
            if spec.label in PAIRS:
                label, long_, tight = PAIRS[spec.label]
                short = tight if self._compact else long_
            elif self._compact:
                short = SHORT.get(short, short)
                label = "spc" if label == "space" else label
            if not key_allowed(spec, caps):
                continue
            items.append((label, short, spec.kinds is None or self._kind in spec.kinds))
        if not caps.controllable:
            items.append(("model keys", f"off: {SOURCE_NOUNS.get(caps.kind, caps.kind)} (? why)", False))
        out = Text(no_wrap=True, overflow="crop")
        used = 0
        for label, short, enabled in items:
            size = len(label) + 1 + len(short)
            if used and used + 2 + size > width:
                out.append("\n")
                used = 0
            elif used:
                out.append("  ")
                used += 2
            if enabled:
                out.append(label, self._style("key"))
                out.append(" " + short, self._style("label"))
            else:
                out.append(f"{label} {short}", self._style("disabled"))
            used += size
        return out
