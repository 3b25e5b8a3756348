"""JSON Lines records: gradtui's memory of a run.

Line 1 is a header::

    {"type": "header", "format": 1, "gradtui": "0.1.0", "config": {...}, "layer_names": [...],
     "created": "2026-01-01T12:00:00+00:00"}

then one line per recorded step (every K-th step)::

    {"type": "step", "run": 0, "time": 0.41, ...StepRecord.to_dict()...}

and event lines, each with the step at which it happened::

    {"type": "event", "event": "change" | "restart" | "alert_raised" | "alert_cleared" | "nonfinite"
     | "eval" | "end", "step": 120, "run": 0, "time": 0.52, ...}

Every line is written whole with one ``write`` call on an unbuffered file, so a
Ctrl-C, a kill or a crash loses at most the line being written; if a write fails
half-way (disk full) the partial line is cut off again, so the lines already in
the file always parse. NaN and infinities are the strings "nan", "inf", "-inf";
:func:`read_record` turns them back into floats.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from gradtui.engine.record import plain_number

FORMAT_VERSION = 1
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class RecordError(OSError):
    """The record cannot be written or read; the message says why and where."""


class RecordExists(RecordError):
    """The record file exists and overwriting it was not asked for."""


def _describe(err: OSError) -> str:
    return err.strerror or str(err)


class RecordWriter:
    """Writes one JSON Lines record. Opening checks the path at once (before any training).

    ``force=False`` refuses an existing file (:class:`RecordExists`). The file is locked
    (``flock``, exclusive) before it is emptied, so a second writer of the same file, in
    this process or another, is refused whatever ``force`` says, and the first one's lines
    stay intact. Errors raise :class:`RecordError`; after a failed write the writer is
    ``failed`` and ignores further lines. ``lock`` serialises lines and closing between threads.
    """

    def __init__(self, path: str | os.PathLike, force: bool = False):
        from gradtui.config.loader import shown

        self.path = Path(path).expanduser()
        self.name = shown(str(self.path))  # for messages
        self.failed: str = ""
        self.lines = 0
        self.lock = threading.RLock()
        self._offset = 0
        try:
            self._file = self._open_locked(force)
        except RecordError:
            raise
        except OSError as err:
            raise RecordError(f"cannot write the record to {self.name}: {_describe(err)}") from None

    def _open_locked(self, force: bool):
        if self.path.is_dir():
            raise RecordError(f"cannot write the record to {self.name}: it is a directory (give a file name such as run.jsonl)")
        if not self.path.parent.is_dir():
            raise RecordError(f"cannot write the record to {self.name}: the directory {self.path.parent} does not exist")
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | (0 if force else os.O_EXCL)
        try:
            fd = os.open(self.path, flags, 0o666)
        except FileExistsError:
            raise RecordExists(f"the record file {self.name} already exists; use --force to overwrite it or choose another name") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise RecordError(f"the record file {self.name} is being written by another gradtui run; "
                                      "wait for it to end or choose another name") from None
                if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                # a file system without locks: write unlocked rather than not at all
            if os.path.isfile(self.path):
                os.ftruncate(fd, 0)  # only now, holding the lock
        except OSError:
            os.close(fd)
            raise
        return os.fdopen(fd, "wb", buffering=0)

    @property
    def closed(self) -> bool:
        return self._file.closed

    def write(self, obj: dict) -> None:
        """Write one object as one line, whole, and flush it to the OS."""
        data = (json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_default) + "\n").encode("utf-8")
        with self.lock:
            if self.failed or self._file.closed:
                return
            self._write_locked(data)

    def _write_locked(self, data: bytes) -> None:
        try:
            written = self._file.write(data)
            while written is not None and written < len(data):  # rare: a partial write
                more = self._file.write(data[written:])
                if not more:
                    raise OSError(28, "No space left on device")
                written += more
        except OSError as err:
            self.failed = f"writing the record {self.path} failed after {self.lines} lines: {_describe(err)}; the lines already written are valid"
            self._cut_back()
            raise RecordError(self.failed) from None
        self._offset += len(data)
        self.lines += 1

    def _cut_back(self) -> None:
        """Remove a partly written line so the file ends at a line boundary."""
        try:
            os.ftruncate(self._file.fileno(), self._offset)
        except OSError:
            pass

    def header(self, config, layer_names, extra: dict | None = None) -> None:
        from gradtui import __version__

        obj = {
            "type": "header",
            "format": FORMAT_VERSION,
            "gradtui": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "config": config.to_dict() if hasattr(config, "to_dict") else dict(config),
            "layer_names": list(layer_names),
        }
        if extra:
            obj.update(extra)
        self.write(obj)

    def step(self, step_dict: dict, run: int = 0, time: float = 0.0) -> None:
        obj = {"type": "step", "run": run, "time": round(time, 6)}
        obj.update(step_dict)
        self.write(obj)

    def event(self, event: str, step: int, run: int = 0, time: float = 0.0, **fields) -> None:
        obj = {"type": "event", "event": event, "step": int(step), "run": run, "time": round(time, 6)}
        obj.update(fields)
        self.write(obj)

    def close(self) -> None:
        with self.lock:
            if not self._file.closed:
                try:
                    self._file.close()  # releases the lock
                except OSError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _default(value):
    """JSON for NumPy scalars and arrays, tuples and non-finite floats."""
    try:
        import numpy as np

        if isinstance(value, np.ndarray):
            return [plain_number(v) for v in value.tolist()]
        if isinstance(value, np.generic):
            return plain_number(value.item())
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def plain(obj):
    """A copy of obj with non-finite floats as the strings "nan", "inf", "-inf" (for JSON)."""
    if isinstance(obj, float):
        return plain_number(obj)
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


# -- reading ---------------------------------------------------------------------------------
@dataclass
class Record:
    """A record loaded back: the header, the step lines and the event lines, in file order."""

    header: dict
    steps: list = field(default_factory=list)
    events: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # e.g. "line 812 is truncated (skipped)"
    path: str = ""

    @property
    def layer_names(self) -> list:
        return list(self.header.get("layer_names", []))

    def series(self, name: str, run: int | None = None) -> list:
        """One field of every step line (optionally of one run), e.g. ``series("loss")``."""
        return [s[name] for s in self.steps if run is None or s.get("run", 0) == run]


def _numbers(value):
    """Turn the strings "nan", "inf", "-inf" back into floats, in lists too."""
    if isinstance(value, str):
        return _NONFINITE.get(value, value)
    if isinstance(value, list):
        return [_NONFINITE.get(v, v) if isinstance(v, str) else v for v in value]
    return value


def read_record(path: str | os.PathLike) -> Record:
    """Load a JSON Lines record (header, steps, events) for analysis.

    A truncated or unparsable *last* line (a run killed mid-write) is skipped and noted
    in ``Record.problems``; a bad line anywhere else, a missing header or an unreadable
    file raises :class:`RecordError`.
    """
    p = Path(path).expanduser()
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise RecordError(f"cannot read the record {p}: {_describe(err)}") from None
    lines = raw.split(b"\n")
    last_index = len(lines) - 1
    while last_index >= 0 and not lines[last_index].strip():
        last_index -= 1
    record = Record(header={}, path=str(p))
    for i, line in enumerate(lines[: last_index + 1]):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as err:
            truncated = i == last_index and not raw.endswith(b"\n")
            if i == last_index:
                what = "is truncated" if truncated else "does not parse"
                record.problems.append(f"line {i + 1} {what} (skipped): the run probably ended while writing it")
                continue
            raise RecordError(f"{p}: line {i + 1} is not valid JSON ({err}); the record is damaged") from None
        kind = obj.get("type")
        if i == 0 or (not record.header and kind == "header"):
            if kind != "header":
                raise RecordError(f"{p}: line 1 is not a gradtui record header (no \"type\": \"header\")")
            record.header = obj
        elif kind == "step":
            record.steps.append({k: _numbers(v) for k, v in obj.items()})
        elif kind == "event":
            record.events.append({k: _numbers(v) for k, v in obj.items()})
        else:
            record.problems.append(f"line {i + 1} has unknown type {kind!r} (skipped)")
    if not record.header:
        if last_index < 0:
            raise RecordError(f"{p}: the record is empty (the run ended before its header was written)")
        raise RecordError(f"{p}: no header line; is this a gradtui record?")
    return record
