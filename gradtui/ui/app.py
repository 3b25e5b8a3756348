"""GradApp: the Textual application. It reads a source's snapshots and sends it commands.

The interface never trains and never imports the engine. It talks to one
:class:`~gradtui.sources.protocol.Source`: the live trainer (a Session, whose worker
thread trains), a finished record (replay) or a record another process writes (watch).
The source publishes a Snapshot of plain values; the app polls it with ``set_interval``
at the frame rate (``fps``), redrawing only when ``snapshot.version`` changed. Keys the
source's capabilities do not allow are shown as unavailable, with the source's reason;
the mitigation keys become config overrides (:mod:`gradtui.ui.keys`) sent through
``source.apply``, and the trainer decides whether weights carry over or training restarts.
"""

from __future__ import annotations

import io
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from gradtui.config import ConfigError, load_config
from gradtui.control_channel import BY_KEY as REMOTE_COMMANDS
from gradtui.control_channel import ControlError
from gradtui.sources.protocol import CHANGE, REMOTE
from gradtui.ui.keys import BY_LABEL, KEYS, PLAYBACK_KEYS, change_for, describe_change
from gradtui.ui.screens import HelpScreen, PresetPicker
from gradtui.ui.svg import fix_spacing
from gradtui.ui.widgets import AlertsPanel, GradientBars, KeyBar, LossPlot, MitigationsPanel, StatusHeader, WeightPanel

SLOW_INTERVAL = 0.5  # seconds between redraws of the slow-moving panels (weights, alerts, plot)
# Seconds between redraws of the live figures (the header's step, speed and loss, the gradient
# bars) while training runs: drawing a frame and handing it to the terminal holds the GIL the
# training worker needs, so the header and the bars change together, in one frame, 5 times a second.
LIVE_INTERVAL = 0.2


@dataclass
class _Widgets:
    """The main screen's widgets, found once."""

    header: StatusHeader
    bars: GradientBars
    weights: WeightPanel
    alerts: AlertsPanel
    mitigations: MitigationsPanel
    keys: KeyBar
    loss: LossPlot
    right: Vertical


def default_source_factory(cfg):
    """The live trainer, a real Session, for a config (imported lazily: it pulls in the engine)."""
    from gradtui.session import Session

    return Session(cfg, tier="auto")


def zip_folder(directory: Path) -> io.BytesIO:
    """The files of ``directory`` as a zip archive in memory (one download for the browser)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.iterdir()):
            archive.write(path, f"{directory.name}/{path.name}")
    buffer.seek(0)
    return buffer


class GradApp(App[int]):
    """gradtui's terminal interface."""

    CSS_PATH = "app.tcss"
    TITLE = "gradtui"
    ENABLE_COMMAND_PALETTE = False
    HORIZONTAL_BREAKPOINTS = [(0, "-tiny"), (60, "-slim"), (80, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-tiny-h"), (20, "-short"), (32, "-tall")]
    # the playback keys first: where they share a key with a mitigation ([ and ]), a replay
    # takes the playback meaning and a live run, whose source cannot seek, the mitigation
    BINDINGS = [
        Binding(spec.key, spec.action, spec.short, key_display=spec.label, show=False)
        for spec in PLAYBACK_KEYS + KEYS
    ] + [Binding("ctrl+c", "quit_app", "quit", show=False, priority=True),
         Binding("pagedown", "scroll_alerts(1)", "alerts down", show=False),
         Binding("pageup", "scroll_alerts(-1)", "alerts up", show=False)]

    def __init__(self, cfg, fps: float = 10.0, source_factory=None, name: str | None = None, source=None) -> None:
        """``cfg`` starts the live trainer (``source_factory(cfg)``, a Session by default);
        ``source`` shows another source instead (a replayed or followed record)."""
        super().__init__()
        self.cfg = cfg
        self.fps = max(1.0, float(fps))
        self._factory = source_factory or default_source_factory
        self._given_source = source
        self.source = None
        self.panels: _Widgets | None = None
        self.preset_name = name or getattr(cfg, "name", "")
        self.cfg_started = cfg
        self.preset_source = getattr(cfg, "source", None) or self.preset_name
        self.mode = "grad"  # grad | delta | time
        self._mode_chosen = False
        self._version = -1
        self._snapshot = None
        self._slow_at = 0.0
        self._slow_key = None
        self._live_at = 0.0
        self._live_key = None
        self.exit_code = 0

    # -- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        with Horizontal(id="main"):
            with Horizontal(id="left"):
                yield GradientBars(id="bars")
                yield WeightPanel(id="weights")
            with Vertical(id="right"):
                yield AlertsPanel(id="alerts")
                yield MitigationsPanel(id="mitigations")
                yield LossPlot(id="loss")
        yield Static(
            "terminal too small\n\ngradtui needs at least 60 columns × 20 rows.\nEnlarge the window (q quits).",
            id="too-small",
        )
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        # Keep the main screen's widgets: while the help or the picker is on top,
        # app.query_one would search that screen instead.
        self.panels = _Widgets(
            header=self.query_one(StatusHeader), bars=self.query_one(GradientBars),
            weights=self.query_one(WeightPanel), alerts=self.query_one(AlertsPanel),
            mitigations=self.query_one(MitigationsPanel), keys=self.query_one(KeyBar),
            loss=self.query_one(LossPlot), right=self.query_one("#right"),
        )
        if self._given_source is not None:
            self._start_source(self._given_source)
        else:
            self._start_session(self.cfg)
        self.call_after_refresh(self.redraw_now)  # again with the first layout's sizes
        self.set_interval(1.0 / self.fps, self.poll, name="poll")

    # -- the source ----------------------------------------------------------------------
    def _start_session(self, cfg) -> None:
        self.cfg = self.cfg_started = cfg
        self.preset_source = cfg.source or self.preset_name
        self._start_source(self._factory(cfg))

    def _start_source(self, source) -> None:
        self.source = source
        self.capabilities = source.capabilities
        source.start()
        self._version = -1
        cfg = source.pending_config
        # recurrent models show their problem through time: start there (t switches back)
        self.mode = "time" if cfg is not None and cfg.is_recurrent else "grad"
        self._mode_chosen = cfg is not None  # a followed record's config arrives with its header
        self.redraw_now()  # at once: nothing of the previous source stays on screen

    def _stop_source(self) -> None:
        if self.source is not None:
            try:
                self.source.stop(timeout=1.0)
            except Exception:  # quitting must never fail
                pass

    def current_config(self):
        """The config the next key builds on: the source's, with every queued change applied
        (None for a record of a model gradtui did not build)."""
        if self.source is None:
            return self.cfg
        return self.source.pending_config

    def poll(self) -> None:
        """Read the latest snapshot and redraw what changed (called at the frame rate)."""
        if self.source is None or self.panels is None:
            return
        snap = self.source.snapshot()
        if snap.version == self._version and snap is self._snapshot:
            return
        self._version = snap.version
        self._snapshot = snap
        caps = self.source.capabilities  # a followed record's header may open its control channel
        if caps != self.capabilities:
            self.capabilities = caps
            self.panels.keys.show(self.current_config(), caps)
        self.redraw(snap)

    def redraw_now(self) -> None:
        """Read the latest snapshot and redraw every panel at once (tests, export)."""
        if self.source is None or self.panels is None:
            return
        self._snapshot = self.source.snapshot()
        self._version = self._snapshot.version
        self.redraw(self._snapshot, force=True)

    def redraw(self, snap, force: bool = False) -> None:
        """Push a snapshot's plain values down to the widgets.

        While training runs, the header and the bars redraw together at most every LIVE_INTERVAL
        seconds and the slow panels (weights, alerts, settings, plot) every SLOW_INTERVAL seconds;
        each at once when the config, status, run, message or view changes, so a key press shows
        immediately. Paused or single-stepping, every new snapshot is drawn. Rendering holds the
        GIL the training worker also needs between its kernel calls, so fewer redraws mean faster
        training.
        """
        cfg = self.current_config()
        if cfg is not None and not self._mode_chosen:
            self._mode_chosen = True
            self.mode = "time" if cfg.is_recurrent else "grad"
        if cfg is not None and not cfg.is_recurrent and self.mode == "time":
            self.mode = "grad"
        now = time.monotonic()
        live_key = (id(cfg), snap.status, getattr(snap, "run", 0), self.mode, id(snap.before), snap.message,
                    getattr(snap, "tier", ""))
        running = snap.status == "running"  # paused or single-stepping: every frame is cheap
        if not (force or not running or live_key != self._live_key or now - self._live_at >= LIVE_INTERVAL):
            return
        self._live_key, self._live_at = live_key, now
        self.panels.header.show(snap, self.preset_name, cfg)
        self.panels.bars.show(snap, self.mode)
        key = (id(cfg), snap.status, getattr(snap, "run", 0), len(snap.alerts), id(snap.before))
        if not (force or not running or key != self._slow_key or now - self._slow_at >= SLOW_INTERVAL):
            return
        self._slow_key, self._slow_at = key, now
        # also while hidden (cheap: no render), so a resize that reveals it has data at once
        self.panels.weights.show(snap, footer=self.panels.bars.footer_lines)
        header = self.panels.header
        self.panels.alerts.show(snap, message=snap.message if header.message_cut else "")
        self.panels.right.set_class(bool(snap.alerts), "-alerting")
        caps = self.capabilities  # a gradtui.torch writer still running takes its live remedies
        self.panels.mitigations.show(cfg, snap.alerts, caps.controllable or caps.allows(REMOTE), getattr(self.source, "remote_state", None))
        self.panels.keys.show(cfg, self.capabilities)
        self.panels.loss.show(snap, force=force)

    def on_resize(self) -> None:
        """Redraw once the new layout is in place: what fits (the header's message) depends on it."""
        self.call_after_refresh(self.redraw_now)

    def _boost(self) -> None:
        """Poll quickly for a moment after a command so its effect shows within a frame."""
        for delay in (0.005, 0.02, 0.05):
            self.set_timer(delay, self.poll)

    # -- actions -------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """The playback keys of a source that cannot seek are off, so [ and ] fall through to
        their mitigation; every other key stays on and says why when it does not apply."""
        caps = getattr(self, "capabilities", None)
        for spec in PLAYBACK_KEYS:
            if spec.action.split("(")[0] == action and (not parameters or f"({parameters[0]!r})" in spec.action):
                return True if caps is not None and caps.allows(spec.needs) else None
        return True

    def _unavailable(self, label: str, needs: str) -> bool:
        """Say why a key does nothing for this source (a replay cannot change the model)."""
        caps = self.capabilities
        if caps.allows(needs) or (caps.allows(REMOTE) and label in REMOTE_COMMANDS):
            return False
        self.notify(f"{label}: unavailable: {caps.reason}", severity="warning", timeout=4)
        return True

    def action_mitigate(self, label: str) -> None:
        """Apply the key's change (the alert's remedy, or the next value of its cycle)."""
        if self._unavailable(label, CHANGE):
            return
        if self.current_config() is None and self.capabilities.allows(REMOTE):
            self.action_remote(label)
            return
        cfg = self.current_config()
        snap = self._snapshot
        spec = BY_LABEL[label]
        if not spec.applies_to(cfg):
            self.notify(f"{label}: not available for a {cfg.model.kind} model", severity="warning", timeout=3)
            return
        change = change_for(label, cfg, snap.alerts if snap is not None else ())
        if not change:
            self.notify(f"{label}: nothing to change", timeout=2)
            return
        try:
            new_cfg = cfg.with_overrides(change)
        except ConfigError as err:
            self.notify(str(err), severity="error", timeout=5)
            return
        try:
            self.source.apply(change)
        except ConfigError as err:
            self.notify(str(err), severity="error", timeout=5)
            return
        note = describe_change(change)
        if spec.restarts or _restarts(cfg, new_cfg):
            note += " (restarts)"
        # The change shows at once in the header and the settings; the session's own message
        # ("applied ... at step N") replaces "applying" within a few steps. No toast: a toast
        # re-lays out the whole screen, which cost tens of milliseconds per key.
        self.panels.mitigations.show(new_cfg, snap.alerts if snap is not None else ())
        if snap is not None:
            self.panels.header.show(snap, self.preset_name, new_cfg, pending=note)

    def action_remote(self, label: str) -> None:
        """Send a live remedy to the process that writes the followed record (gradtui.torch)."""
        if self._unavailable(label, REMOTE):
            return
        try:
            command = self.source.remote(label)
        except (ControlError, OSError) as err:
            self.notify(f"{label}: {err}", severity="error", timeout=5)
            return
        self.notify(f"sent to the training process: {command.does}", timeout=3)
        self._boost()

    def action_toggle_pause(self) -> None:
        if self._unavailable("space", BY_LABEL["space"].needs):
            return
        try:
            self.source.toggle_pause()
        except (ControlError, OSError) as err:
            self.notify(f"space: {err}", severity="error", timeout=5)
            return
        self._boost()

    def action_step_once(self) -> None:
        if self._unavailable("s", BY_LABEL["s"].needs):
            return
        self.source.step_once()
        self._boost()

    def action_seek(self, delta: int) -> None:
        """Replay: move ``delta`` steps (lines) back or forward."""
        self.source.seek(int(delta))
        self._boost()

    def action_seek_to(self, index: int) -> None:
        """Replay: the start (0) or the end (-1) of the record."""
        self.source.seek_to(int(index))
        self._boost()

    def action_speed(self, factor: int) -> None:
        """Replay: faster (1) or slower (-1)."""
        self.source.faster(int(factor))
        self._boost()

    def action_new_run(self) -> None:
        if self._unavailable("n", BY_LABEL["n"].needs):
            return
        self.source.restart(next_seed=True)
        self.notify("new run: fresh weights, next seed", timeout=2)
        self._boost()

    def action_toggle_delta(self) -> None:
        self.mode = "delta" if self.mode != "delta" else "grad"
        if self._snapshot is not None:
            self.panels.bars.show(self._snapshot, self.mode)

    def action_toggle_time(self) -> None:
        cfg = self.current_config()
        if cfg is None or not cfg.is_recurrent:
            self.notify("t: the time view is for recurrent models", severity="warning", timeout=3)
            return
        self.mode = "time" if self.mode != "time" else "grad"
        if self._snapshot is not None:
            self.panels.bars.show(self._snapshot, self.mode)

    def action_scroll_alerts(self, direction: int) -> None:
        """PgDn / PgUp page through the alerts panel when its text is taller than the panel."""
        alerts = self.panels.alerts
        if direction > 0:
            alerts.scroll_page_down(animate=False)
        else:
            alerts.scroll_page_up(animate=False)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.current_config(), self.capabilities))

    def action_presets(self) -> None:
        if self._unavailable("p", BY_LABEL["p"].needs):
            return
        self.push_screen(PresetPicker(self.preset_source, self.cfg_started), self._load_preset)

    def _load_preset(self, name: str | None) -> None:
        if not name:
            return
        try:
            cfg = load_config(name)
        except ConfigError as err:
            self.notify(str(err), severity="error", timeout=6)
            return
        self._stop_source()
        self.preset_name = cfg.name or name
        self._start_session(cfg)
        self.notify(f"loaded preset {name}", timeout=3)

    def action_export(self) -> None:
        """An SVG screenshot and the session's JSON Lines record, in a new folder; show the paths."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        directory = Path.cwd() / f"gradtui-export-{stamp}"
        self.redraw_now()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            svg = str(directory / "screen.svg")
            Path(svg).write_text(fix_spacing(self.export_screenshot()), encoding="utf-8")
            record = self.source.export(str(directory))
        except Exception as err:
            self.notify(f"export failed: {err}", severity="error", timeout=8)
            return
        self.last_export = (svg, str(record))
        where = f"saved on the server\n{svg}\n{record}" if self.is_web else f"saved\n{svg}\n{record}"
        self.notify(where, title="export", timeout=10)
        if self.is_web:  # gradtui serve: the files are on the server; the browser downloads a copy
            self.deliver_binary(zip_folder(directory), save_filename=f"{directory.name}.zip",
                                mime_type="application/zip")

    def action_quit_app(self) -> None:
        self._stop_source()
        self.exit(self.exit_code)

    def on_unmount(self) -> None:
        self._stop_source()


def _restarts(old, new) -> bool:
    from gradtui.config.changes import restart_keys

    return bool(restart_keys(old, new))
