"""What the command line prints: the preset list, a resolved config, and the end-of-run summary."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table
from rich.text import Text

MAX_ROWS = 40  # layers shown in full; deeper networks show both ends


class PipeSafeConsole(Console):
    """A rich Console that lets a closed pipe (``gradtui presets | head -1``) reach the
    command line's handler as BrokenPipeError (exit 0) instead of rich's SystemExit(1)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(32, "Broken pipe")


def _console(stderr: bool = False, soft_wrap: bool = False) -> Console:
    return PipeSafeConsole(stderr=stderr, highlight=False, soft_wrap=soft_wrap)


# -- presets ---------------------------------------------------------------------------------
def print_presets() -> int:
    from gradtui.config import DEFAULT_PRESET, load_config, preset_names

    console = _console()
    table = Table(title="Shipped presets", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("preset", style="bold", no_wrap=True)
    table.add_column("what it shows")
    for name in preset_names():
        try:
            cfg = load_config(name)
            text = cfg.title or _first_sentence(cfg.description)
        except Exception as err:  # noqa: BLE001 - a broken preset must not hide the others
            text = f"(does not load: {err})"
        table.add_row(name + (" (default)" if name == DEFAULT_PRESET else ""), text)
    console.print(table)
    console.print("\nOpen one live: [bold]gradtui NAME[/]   headless: [bold]gradtui run NAME[/]   "
                  "inspect: [bold]gradtui check NAME[/]")
    return 0


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    head, dot, _ = text.partition(". ")
    return head + ("." if dot else "")


# -- check -----------------------------------------------------------------------------------
def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def format_config(cfg) -> str:
    """The resolved config as TOML (valid as a preset), defaults marked with a comment."""
    from gradtui.config.schema import SECTIONS, key_specs

    specs = key_specs()
    lines = [f"name = {_toml_value(cfg.name)}"]
    if cfg.title:
        lines.append(f"title = {_toml_value(cfg.title)}")
    data = cfg.to_dict()
    for section in SECTIONS:
        lines.append("")
        lines.append(f"[{section}]")
        for key, value in data[section].items():
            dotted = f"{section}.{key}"
            spec = specs.get(dotted)
            applies = spec is None or ((not spec.kinds or cfg.model.kind in spec.kinds) and (not spec.tasks or cfg.data.task in spec.tasks))
            if not applies:
                continue
            note = "" if dotted in cfg.explicit else "  # default"
            lines.append(f"{key} = {_toml_value(value)}{note}")
    return "\n".join(lines)


def print_check(cfg) -> int:
    console = _console()
    where = cfg.source or cfg.name
    console.print(f"[bold]{where}[/]: valid. Resolved config (keys marked '# default' were not set by the preset "
                  "or --set; keys that do not apply to this model and task are left out):\n")
    console.print(format_config(cfg), markup=False)
    console.print("\nAt initialisation (mean-field " + "theory, before any training):", markup=False)
    console.print("  " + theory_line(cfg), markup=False)
    console.print("\n" + memory_line(cfg), markup=False)
    return 0


def memory_line(cfg) -> str:
    """The memory a run of this config needs, by part, and what the machine has available."""
    from gradtui.engine.memory import available_memory, estimate_memory, format_bytes

    estimate, available = estimate_memory(cfg), available_memory()
    have = f"; {format_bytes(available)} available" if available is not None else ""
    return f"Memory: about {format_bytes(estimate.total)} ({estimate.describe()}){have}."


def theory_line(cfg) -> str:
    """Mean-field theory's one-sentence prediction at initialisation for this config."""
    from gradtui.theory import predict

    try:
        return predict(cfg).summary()
    except Exception as err:  # noqa: BLE001 - the prediction is an aside; it must not stop the command
        return f"theory: no prediction ({type(err).__name__}: {err})"


# -- end-of-run summary ------------------------------------------------------------------------
def _fmt(value, kind: str = "g") -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if kind == "%":
        return f"{100 * value:.0f}%"
    if value == 0:
        return "0"
    return f"{value:.2e}" if (abs(value) < 1e-2 or abs(value) >= 1e4) else f"{value:.3g}"


def summary_table(snap) -> Table:
    """Per-layer statistics of the latest finite step, input side first."""
    latest = snap.latest_finite
    names = list(snap.layer_names)
    when = f"step {latest.get('step', snap.step)}"
    if snap.latest.get("nonfinite"):
        when += f", the last finite one (step {snap.latest['step']} went non-finite and was not applied)"
    table = Table(title=f"Per-layer statistics at {when} (input side first: {names[0]} is next to the input, "
                        f"{names[-1]} produces the output)" if names else "Per-layer statistics",
                  title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("layer", no_wrap=True)
    table.add_column("gradient norm", justify="right")
    table.add_column("vs output", justify="right")
    table.add_column("delta norm", justify="right")
    table.add_column("update ratio", justify="right")
    table.add_column("dead", justify="right")
    table.add_column("saturated", justify="right")
    grad = latest.get("grad_norm") or []
    last = grad[-1] if grad and isinstance(grad[-1], float) and grad[-1] > 0 else None
    rows = list(range(len(names)))
    if len(rows) > MAX_ROWS:
        half = MAX_ROWS // 2
        rows = rows[:half] + [None] + rows[-half:]
    for i in rows:
        if i is None:
            table.add_row("...", *[""] * 6)
            continue

        def col(name, kind="g"):
            values = latest.get(name) or []
            return _fmt(values[i], kind) if i < len(values) else "-"

        rel = "-"
        if last is not None and i < len(grad) and isinstance(grad[i], float):
            rel = _fmt(grad[i] / last)
        style = ""
        if last is not None and i < len(grad) and isinstance(grad[i], float) and grad[i] / last < snap.config.alerts.vanishing_ratio:
            style = "red"
        table.add_row(Text(names[i], style=style), col("grad_norm"), Text(rel, style=style), col("delta_norm"),
                      col("update_ratio"), col("dead_fraction", "%"), col("saturation", "%"))
    return table


COLUMN_HELP = (
    "gradient norm = |dL/dW| of the layer's weights; vs output = that divided by the output layer's "
    "(red: below alerts.vanishing_ratio, i.e. the gradient vanished on the way back); delta norm = |dL/dz|, "
    "the back-propagated error at the layer's pre-activations; update ratio = |dW|/|W|, how much the last step "
    "moved the weights (tiny = the layer does not learn); dead = units whose derivative is zero on the whole batch; "
    "saturated = activations in the flat tails of sigmoid/tanh."
)


def print_summary(snap, console: Console, interrupted: bool = False, record=None) -> None:
    """The end-of-run report: per-layer table, the time profile (recurrent nets), evaluation
    against the task's baseline, the alerts raised with the ``--set`` that fixes each, the record."""
    if snap.latest_finite:
        console.print(summary_table(snap))
        console.print(Text(COLUMN_HELP, style="dim"))
        profile = time_profile(snap.latest_finite.get("time_delta_norm"), snap.config.alerts.time_ratio)
        if profile:
            console.print()
        for part in profile:
            console.print(part)
    else:
        console.print("No step finished, so there are no statistics to show.")
    loss = snap.latest_finite.get("loss") if snap.latest_finite else None
    ev = snap.evaluation or {}
    parts = [f"training loss {_fmt(loss)}" if loss is not None else ""]
    if ev:
        parts.append(f"held-out loss {_fmt(ev.get('loss'))}" + (f", accuracy {ev['accuracy']:.1%}" if "accuracy" in ev else ""))
    console.print("\n" + "; ".join(p for p in parts if p) + baseline_note(ev.get("loss", loss), snap.baseline_loss))
    console.print()
    raised = list(snap.raised)
    active = {a.kind for a in snap.alerts}
    if not raised:
        console.print("Alerts raised: none.")
    else:
        console.print(f"Alerts raised ({len(raised)}):")
        for step, alert in raised:
            state = "still active" if alert.kind in active else "cleared"
            line = Text(f"  step {step}  ", style="")
            line.append(f"{alert.severity.upper()} {alert.kind}", style="red" if alert.severity == "critical" else "yellow")
            line.append(f" ({state}): {alert.message}")
            console.print(line)
            fixes = [headless_change(r.change, alert, snap.config) for r in alert.remedies if r.change]
            for text in fix_lines(fixes, console.width):
                console.print(Text(text, style="dim"), soft_wrap=True)
    if record:
        console.print(f"\nRecord: {record}  (load it with gradtui.read_record)")


def time_profile(profile, time_ratio: float) -> tuple:
    """|dL/dh_t| of the top layer at a few time steps, first to last, as a small table, and
    a line with its ratio h_1 / h_T and what it means (recurrent nets); () without a profile."""
    values = [v for v in (profile or []) if isinstance(v, float)]
    if len(values) < 2:
        return ()
    T = len(values)
    picks = sorted({0, T // 4, T // 2, (3 * T) // 4, T - 1})
    caption = ""
    if values[-1] > 0:
        ratio = values[0] / values[-1]
        verdict = "it vanishes before reaching the first steps" if ratio < time_ratio else "it reaches the first steps"
        caption = f"h_1 / h_{T} = {_fmt(ratio)}: {verdict} (alerts.time_ratio = {time_ratio:g})"
    table = Table(title="Gradient through time: |dL/dh_t| of the top layer (the loss reads the last steps)",
                  title_justify="left", show_edge=False, pad_edge=False)
    for t in picks:
        table.add_column(f"t={t + 1}", justify="right", no_wrap=True)
    table.add_row(*(_fmt(values[t]) for t in picks))
    return (table, caption) if caption else (table,)


def baseline_note(loss, baseline) -> str:
    """How a loss compares with the task's baseline (the loss of a constant guess)."""
    if baseline is None or loss is None or not math.isfinite(loss) or baseline <= 0:
        return ""
    note = f"; the task's baseline (a constant guess) is {_fmt(baseline)}"
    if loss >= 0.9 * baseline:
        return note + ": no better than that yet"
    return note + f": {1 - loss / baseline:.0%} below it"


def headless_change(change: tuple, alert, cfg) -> tuple:
    """A remedy's change for the command line. The interface's "one layer fewer" is a step
    to take repeatedly; here the depth is the one at which the measured attenuation per
    layer would stay above alerts.vanishing_ratio:
    depth' = 1 + (depth - 1) * log(vanishing_ratio) / log(attenuation)."""
    out = []
    for key, value in change:
        figure = alert.figure
        if key == "model.depth" and alert.kind == "vanishing" and figure is not None and cfg.model.depth > 2:
            ratio = cfg.alerts.vanishing_ratio
            if figure <= 0:
                value = 2
            elif figure < ratio:
                value = max(2, min(value, int(1 + (cfg.model.depth - 1) * math.log(ratio) / math.log(figure))))
        out.append((key, value))
    return tuple(out)


def fix_lines(changes: list, width: int) -> list[str]:
    """``try: --set K=V --set K=V`` then ``or: ...`` lines, broken only between options
    (never inside one) so that each line still pastes into a shell."""
    lines = []
    for i, change in enumerate(changes):
        lead = "      try: " if i == 0 else "       or: "
        line = lead
        for key, value in change:
            unit = f"--set {key}={_cli_value(value)}"
            if line.strip() not in ("try:", "or:") and len(line) + 1 + len(unit) + 2 > width:
                lines.append(line + " \\")
                line = " " * len(lead)
            line += ("" if line.endswith(" ") else " ") + unit
        lines.append(line)
    return lines


def _cli_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def worst_alert(snap) -> str:
    if not snap.alerts:
        return "no alerts"
    a = snap.alerts[0]
    return f"{a.severity}: {a.kind}"
