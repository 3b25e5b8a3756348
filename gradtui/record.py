"""JSON Lines records: gradtui's memory of a run, and the interface between producers and viewers.

docs/record-format.md is the specification (format 2). In short, line 1 is a header::

    {"type": "header", "format": 2, "producer": "gradtui 0.1.0", "created": "2026-01-01T12:00:00+00:00",
     "layers": [{"name": "hidden.0", "kind": "linear", "activation": "sigmoid", "fan_in": 2, "fan_out": 32}, ...],
     "alerts": {...thresholds...}, "diagnosed": true, "every": 1, "config": {...gradtui's config...}}

then one line per recorded step, ``{"type": "step", "run": 0, "time": 0.41, ...StepRecord.to_dict()...}``,
and event lines, ``{"type": "event", "event": "change" | "restart" | "alert_raised" | ... | "end",
"step": 120, "run": 0, "time": 0.52, ...}``.

Every line is written whole with one ``write`` call on an unbuffered file, so a
Ctrl-C, a kill or a crash loses at most the line being written; if a write fails
half-way (disk full) the partial line is cut off again, so the lines already in
the file always parse. NaN and infinities are the strings "nan", "inf", "-inf".
Reading: :mod:`gradtui.record_read` (:func:`read_record`, :class:`Record`).
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import threading
from pathlib import Path

from gradtui.engine.record import plain_number

FORMAT_VERSION = 2  # 2: the layer table ("layers"), "producer", "alerts", "diagnosed"; 1 had "layer_names"
READABLE_FORMATS = (1, 2)


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

    def header(self, config, layers, extra: dict | None = None) -> None:
        """Write the header: ``config`` a gradtui Config (or a plain dict, or None), ``layers``
        the layer table (Layer objects, dicts, or bare names)."""
        self.write(header_line(config, layers, extra))

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


def header_line(config, layers, extra: dict | None = None) -> dict:
    """The header object of a record for a gradtui config (or None) and a layer table."""
    from gradtui import __version__

    obj = {
        "type": "header",
        "format": FORMAT_VERSION,
        "producer": f"gradtui {__version__}",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "layers": [_layer_entry(layer) for layer in layers],
    }
    if config is not None:
        cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        obj["diagnosed"] = True
        if isinstance(cfg.get("alerts"), dict):
            obj["alerts"] = dict(cfg["alerts"])
        obj["config"] = cfg
    if extra:
        obj.update(extra)
    return obj


def _layer_entry(layer) -> dict:
    if isinstance(layer, str):
        return {"name": layer}
    if hasattr(layer, "to_dict"):
        return layer.to_dict()
    return dict(layer)


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
    if isinstance(obj, (list, tuple)):  # finite floats as they are (x - x is 0 for them alone): the common case, fast
        return [v if type(v) is float and v - v == 0 else plain(v) for v in obj]
    return obj


def __getattr__(name: str):
    """The reader lives in gradtui.record_read; ``from gradtui.record import read_record`` keeps working."""
    if name in ("Record", "read_record"):
        from gradtui import record_read

        return getattr(record_read, name)
    raise AttributeError(f"module 'gradtui.record' has no attribute {name!r}")


def statistics_table() -> str:
    """The step-line statistics as a Markdown table (docs/record-format.md includes it; a test
    checks it is current), from the one declaration in gradtui.engine.record.STATISTICS."""
    from gradtui.engine.record import STATISTICS

    rows = ["| field | one value per | required | unit | meaning |", "|---|---|---|---|---|"]
    for s in STATISTICS:
        required = "no (null or absent)" if s.optional else ("yes" if s.name == "grad_norm" else "recommended")
        rows.append(f"| `{s.name}` | {s.per} | {required} | {s.unit} | {s.meaning} |")
    return "\n".join(rows)
