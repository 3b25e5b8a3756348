"""MitigationsPanel: the current setting of every mitigation, its key, and which ones alerts suggest.

One row per setting (activation, init, batch norm, residual, clipping, optimiser,
learning rate, depth; the cell type for recurrent models; LayerNorm placement and
warmup for Transformers; the schedule when it is not constant). A setting an active
alert's remedy points at is highlighted and marked "◀ try", so the eye goes from the
alert to the key. For a source that takes no changes (a replay, a followed record) the
panel shows the settings as recorded: keys greyed, suggestions marked "◀ would help".
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from gradtui.ui.keys import keys_for_setting, suggested_settings
from gradtui.config.summary import clip_text, fmt_short, init_text, setting_label, setting_value
from gradtui.ui.widgets._lines import set_titles


def rows_for(cfg) -> list[tuple[str, str, str, str]]:
    """(label, value, key, dotted setting) rows for a config; labels from SETTING_LABELS, keys
    from the key table."""
    m, t = cfg.model, cfg.train
    rows = []
    if m.kind == "transformer":
        rows.append((m.norm, "model.norm"))
        rows.append((setting_value(m.residual), "model.residual"))
        rows.append((m.activation, "model.activation"))
        rows.append((init_text(cfg), "model.init"))
    elif not cfg.is_recurrent:  # mlp, cnn
        rows.append((m.activation, "model.activation"))
        rows.append((init_text(cfg), "model.init"))
        rows.append((setting_value(m.batchnorm), "model.batchnorm"))
        rows.append((setting_value(m.residual), "model.residual"))
    else:
        rows.append((m.kind, "model.kind"))
        if m.kind == "rnn":
            rows.append((m.activation, "model.activation"))
        rows.append((m.recurrent_init, "model.recurrent_init"))
    rows.append(("off" if t.clip == "none" else clip_text(cfg)[5:], "train.clip"))
    rows.append((t.optimizer, "train.optimizer"))
    rows.append((fmt_short(t.lr), "train.lr"))
    if m.kind == "transformer" or t.warmup_steps:
        rows.append((f"{t.warmup_steps} steps" if t.warmup_steps else "off", "train.warmup_steps"))
    if t.schedule != "constant":
        rows.append((t.schedule, "train.schedule"))
    rows.append((str(m.depth), "model.depth"))
    return [(setting_label(setting), value, keys_for_setting(setting), setting) for value, setting in rows]


def remote_rows(state: dict) -> list[tuple[str, str, str, str]]:
    """Rows for a gradtui.torch writer's live settings (its record says them; keys send remedies)."""
    if not state:
        return []
    lr = state.get("train.lr")
    return [
        ("training", "ended" if state.get("train.ended") else "paused" if state.get("train.paused") else "running", "spc",
         "train.paused"),
        ("clipping", "off" if state.get("train.clip") in (None, "none") else str(state["train.clip"]), "c", "train.clip"),
        ("learn rate", fmt_short(lr) if isinstance(lr, (int, float)) else "?", "+ -", "train.lr"),
        ("NaN steps", "skipped" if state.get("train.on_nonfinite") == "skip" else str(state.get("train.on_nonfinite") or "recorded"), "x",
         "train.on_nonfinite"),
    ]


class MitigationsPanel(Widget, can_focus=False):
    """Current mitigation settings with their keys; alert-suggested ones highlighted."""

    COMPONENT_CLASSES = {"mitigations-panel--suggested", "mitigations-panel--key", "mitigations-panel--label",
                         "mitigations-panel--disabled"}
    """A row an alert suggests, the key column, the setting names, keys that do not apply here."""

    DEFAULT_CSS = """
    MitigationsPanel {
        height: auto;
        padding: 0 1;
        border: round $primary;
        border-title-color: $text;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    MitigationsPanel > .mitigations-panel--suggested { color: $warning; text-style: bold; }
    MitigationsPanel > .mitigations-panel--key { color: $accent; text-style: bold; }
    MitigationsPanel > .mitigations-panel--label { color: $text-muted; }
    MitigationsPanel > .mitigations-panel--disabled { color: $text-disabled; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = "mitigations (key)"
        self._rows: tuple = ()
        self._suggested: frozenset = frozenset()
        self._controllable = True

    def show(self, cfg, alerts=(), controllable: bool = True, remote: dict | None = None) -> None:
        """Show a config's settings (or, for a gradtui.torch writer, its live settings ``remote``,
        whose keys act through its control channel); highlight those the alerts' remedies name.
        ``controllable`` is False for a source whose model cannot be changed from here."""
        rows = tuple(rows_for(cfg)) if cfg is not None else tuple(remote_rows(remote or {}))
        suggested = frozenset(suggested_settings(alerts))
        if rows != self._rows or suggested != self._suggested or controllable != self._controllable:
            taller = len(rows) != len(self._rows)  # one line per row: only then may the panel's height change
            self._rows, self._suggested, self._controllable = rows, suggested, controllable
            set_titles(self, "mitigations (key)" if controllable else "settings (as recorded)")
            # a new layout re-renders the whole screen (tens of ms): a key press waits for it
            self.refresh(layout=taller)

    def _style(self, name: str):
        return self.get_component_rich_style(f"mitigations-panel--{name}", partial=True)

    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        for i, (label, value, key, setting) in enumerate(self._rows):
            if i:
                out.append("\n")
            hot = setting in self._suggested or any(k in self._suggested for k in key.split())
            out.append(f" {key:^3} ", self._style("key" if self._controllable else "disabled"))
            out.append(f" {label:<11}", self._style("label"))
            out.append(value, self._style("suggested") if hot else None)
            if hot:
                out.append(" ◀ try" if self._controllable else " ◀ would help", self._style("suggested"))
        return out
