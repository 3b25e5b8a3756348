"""Follow: a record another process is writing, like ``tail -f``.

A thread polls the file every POLL seconds and feeds each new complete line to a
:class:`~gradtui.sources.feed.RecordFeeder`. It copes with what happens to files:

* a record that does not exist yet is waited for (status "waiting");
* a writer that pauses: after QUIET seconds without a new line the message says since when;
* the ``end`` line: status "finished", with the writer's reason;
* a file truncated (shorter than what was read) or rewritten (another file at the path,
  or a different first line): the record is followed again from its start;
* a second header in the same file: a new run, followed from that header.

Memory stays bounded: the monitor's history is, and only the unfinished last line is
kept between polls.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime
from pathlib import Path

from gradtui.monitor import Monitor
from gradtui.record import RecordError
from gradtui.record_read import check_header, parse_line
from gradtui.sources.feed import RecordFeeder
from gradtui.control_channel import ControlError, ControlSender
from gradtui.sources.protocol import FOLLOW, FOLLOW_CONTROL

POLL = 0.05  # seconds between looks at the file
QUIET = 2.0  # seconds without a new line before the header says the writer paused
MAX_LINE = 64 * 1024 * 1024  # an unfinished line longer than this is not a record line


class FollowSource:
    """Follows the record at ``path``; see the module docstring. When the record's header names
    a control file (a :mod:`gradtui.torch` writer), the live remedies can be sent to the writer
    (:meth:`remote`) until it ends."""

    def __init__(self, path, history_capacity: int = 2000, poll: float = POLL, quiet: float = QUIET):
        self.path = Path(path).expanduser()
        self.name = self.path.name
        self._capacity = history_capacity
        self._poll, self._quiet = poll, quiet
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._monitor = Monitor(history_capacity)
        self._feeder: RecordFeeder | None = None
        self._file = None
        self._ino = None
        self._offset = 0
        self._partial = b""
        self._first_line = b""
        self._last_line_at = time.time()
        self._note = ""  # what happened to the file (truncated, rewritten, new run)
        self._problem = ""
        self._dirty = False
        self._rate, self._rate_at, self._rate_fed = 0.0, time.monotonic(), 0
        self.error_traceback = ""
        self._snapshot = self._publish()

    # -- the Source interface -------------------------------------------------------------
    @property
    def pending_config(self):
        return self._feeder.config if self._feeder is not None else None

    @property
    def config(self):
        return self.pending_config

    def start(self) -> "FollowSource":
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="gradtui-follow", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> bool:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def snapshot(self):
        return self._snapshot

    @property
    def capabilities(self):
        f = self._feeder
        if f is not None and f.header.get("control") and not f.ended and self.control_file().exists():
            return FOLLOW_CONTROL
        return FOLLOW

    def control_file(self):
        name = self._feeder.header.get("control") if self._feeder is not None else None
        return self.path.parent / str(name) if name else self.path.with_name(self.path.name + ".control")

    @property
    def remote_state(self) -> dict:
        """The writer's live settings as its record says (learning rate, clipping, ...);
        ``train.ended`` once its record has its end line."""
        if self._feeder is None:
            return {}
        state = dict(self._feeder.remote)
        if self._feeder.ended:
            state["train.ended"] = True
        return state

    def remote(self, key: str):
        """Send the live remedy bound to ``key`` (gradtui.control_channel.COMMANDS) to the writer;
        ControlError says why it cannot be sent."""
        if self.capabilities is not FOLLOW_CONTROL:
            raise ControlError(FOLLOW.reason)
        return ControlSender(self.control_file()).send(key)

    def toggle_pause(self) -> None:
        if self.capabilities is FOLLOW_CONTROL:
            self.remote("space")
            return
        raise NotImplementedError(FOLLOW.reason)

    def step_once(self) -> None:
        raise NotImplementedError(FOLLOW.reason)

    def export(self, directory) -> str:
        return self._monitor.journal.export(self._snapshot, directory)

    def poll_once(self) -> None:
        """Look at the file once (the thread does this every POLL seconds)."""
        self._dirty = False
        changed = self._read() or self._dirty
        went_quiet = (self._feeder is not None and self._snapshot.status == "running"
                      and time.time() - self._last_line_at > self._quiet)
        if changed or went_quiet:
            self._snapshot = self._publish()

    # -- the thread -------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self.poll_once()
                self._stop.wait(self._poll)
        except Exception as err:  # noqa: BLE001 - report, do not vanish
            import traceback

            self.error_traceback = traceback.format_exc()
            self._problem = f"following failed: {type(err).__name__}: {err}"
            self._snapshot = self._publish(status="error")
        finally:
            self._close()

    def _close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
        self._file = None

    def _restart(self, note: str) -> None:
        """Follow the file again from its start (truncated, rewritten, replaced)."""
        self._close()
        self._ino, self._offset, self._partial, self._first_line = None, 0, b"", b""
        self._monitor = Monitor(self._capacity)
        self._feeder = None
        self._note = f"{note} at {datetime.now():%H:%M:%S}; following it from its start"
        self._dirty = True

    def _read(self) -> bool:
        """Read what was appended since the last look; True when something changed."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._file is not None:
                self._restart("the record was removed")
            return False
        except OSError as err:
            self._problem = f"cannot read {self.path}: {err.strerror or err}"
            return True
        if self._file is not None and (st.st_ino != self._ino or st.st_size < self._offset):
            self._restart("the record was rewritten" if st.st_ino != self._ino else "the record was truncated")
        if self._file is not None and self._first_line and not self._same_first_line():
            self._restart("the record was rewritten")
        if self._file is None:
            try:
                self._file = open(self.path, "rb")
            except OSError as err:
                self._problem = f"cannot read {self.path}: {err.strerror or err}"
                return True
            self._ino = os.fstat(self._file.fileno()).st_ino
        self._file.seek(self._offset)
        data = self._file.read()
        if not data:
            return False
        self._offset += len(data)
        chunks = (self._partial + data).split(b"\n")
        self._partial = chunks.pop()
        if len(self._partial) > MAX_LINE:
            self._problem = f"a line of more than {MAX_LINE} bytes is not a record line (skipped)"
            self._partial = b""
        for line in chunks:
            if line.strip():
                self._line(line)
        self._last_line_at = time.time()
        return True

    def _same_first_line(self) -> bool:
        try:
            return os.pread(self._file.fileno(), len(self._first_line), 0) == self._first_line
        except OSError:
            return False

    def _line(self, line: bytes) -> None:
        try:
            kind, obj = parse_line(line)
        except (ValueError, UnicodeDecodeError) as err:
            self._problem = f"a line that is not JSON was skipped ({err})"
            return
        if kind == "header":
            try:
                check_header(obj, self.name)
            except RecordError as err:
                self._problem = str(err)
                return
            if self._feeder is not None:
                self._monitor = Monitor(self._capacity)
                self._note = f"a new run started in the file at {datetime.now():%H:%M:%S}"
            else:
                self._first_line = line + b"\n"
            self._feeder = RecordFeeder(obj, self._monitor, self.name)
            self._rate_fed = 0
            return
        if self._feeder is None:
            self._problem = f"{self.name}: line 1 is not a record header; waiting for one"
            return
        self._feeder.feed(kind, obj)

    def _publish(self, status: str | None = None):
        f = self._feeder
        if f is None:
            where = "waiting for the record" if not self.path.exists() else "waiting for the record's header"
            message = f"{where} {self.path}" + (f" · {self._note}" if self._note else "") + (f" · {self._problem}" if self._problem else "")
            return self._monitor.publish(status=status or "waiting", message=message, source=FOLLOW.kind)
        quiet_for = time.time() - self._last_line_at
        held = bool(f.remote.get("train.paused")) and not f.ended  # paused from a viewer (space)
        if status is None:
            status = "finished" if f.ended else ("paused" if held or quiet_for > self._quiet else "running")
        where = f"step {f.step:,}" + (f" · run {f.run + 1}" if f.run else "")
        now = time.monotonic()
        if now - self._rate_at >= 0.5:  # steps per second, from the step lines read
            fed = f.steps_fed * int(f.header.get("every", 1) or 1)
            inst = max(0.0, (fed - self._rate_fed) / (now - self._rate_at))
            self._rate = inst if not self._rate else 0.5 * self._rate + 0.5 * inst
            self._rate_at, self._rate_fed = now, fed
        parts = ["following the writer" if status == "running" else ""]
        if f.ended:
            parts.append(f"the writer ended ({f.ended})")
        elif held:
            parts.append(f"training paused after step {f.step:,} (space resumes it)")
        elif quiet_for > self._quiet:
            parts.append(f"no new lines since {datetime.fromtimestamp(self._last_line_at):%H:%M:%S}")
        parts += [self._note, f.problem, self._problem]
        return self._monitor.publish(status=status, step=f.step, steps_per_second=self._rate if status == "running" else 0.0,
                                     config=f.config, message=" · ".join(p for p in parts if p), pause_reason="nonfinite" if f.nonfinite else "",
                                     run=f.run, source=FOLLOW.kind, position=where)
