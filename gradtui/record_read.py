"""Reading records back: :func:`read_record` gives a :class:`Record` of objects.

    >>> rec = gradtui.read_record("run.jsonl")
    >>> rec.layers[0].kind, rec.config().model.depth   # the layer table, gradtui's config
    >>> rec.step_records()[-1].grad_norm                 # StepRecord objects
    >>> [(a.step, a.alert.kind) for a in rec.alerts()]   # alerts as objects
    >>> rec.to_pandas()                                  # one row per step line (needs pandas)

:func:`parse_line` turns one line into an object; the follower of a growing file
(:mod:`gradtui.sources.follow`) uses it line by line. docs/record-format.md is the format.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from gradtui.engine.record import PER_LAYER, SCALARS, Layer, StepRecord, number
from gradtui.record import FORMAT_VERSION, READABLE_FORMATS, RecordError


def _describe(err: OSError) -> str:
    return err.strerror or str(err)


def numbers(value):
    """Turn the strings "nan", "inf", "-inf" back into floats, in lists too."""
    if isinstance(value, str):
        try:
            return number(value)
        except ValueError:
            return value
    if isinstance(value, list):
        return [numbers(v) if isinstance(v, str) else v for v in value]
    return value


def check_header(obj: dict, where: str) -> dict:
    """A header line, validated: a readable format and a layer table; raises RecordError."""
    fmt = obj.get("format")
    if fmt not in READABLE_FORMATS:
        newer = isinstance(fmt, int) and fmt > FORMAT_VERSION
        raise RecordError(f"{where}: record format {fmt!r} " + ("is newer than this gradtui reads (formats "
                          if newer else "is not one gradtui reads (formats ") + ", ".join(map(str, READABLE_FORMATS)) + ")")
    layers = obj.get("layers", obj.get("layer_names"))
    if not isinstance(layers, list) or not layers:
        raise RecordError(f"{where}: the header has no layer table (\"layers\": a list of {{\"name\", \"kind\", ...}})")
    try:
        [Layer.from_dict(entry) for entry in layers]
    except ValueError as err:
        raise RecordError(f"{where}: {err}") from None
    return obj


def parse_line(line: bytes | str):
    """One line as ("header" | "step" | "event" | "other", dict with numbers restored); raises
    ValueError when the line is not a JSON object."""
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    kind = obj.get("type")
    if kind in ("step", "event"):
        obj = {k: numbers(v) for k, v in obj.items()}
    return (kind if kind in ("header", "step", "event") else "other"), obj


@dataclass(frozen=True)
class RecordedAlert:
    """An alert event of a record: ``what`` is "raised" or "cleared"."""

    step: int
    run: int
    what: str
    alert: object  # gradtui.diagnosis.Alert


@dataclass
class Record:
    """A record loaded back: the header, the step lines and the event lines, in file order.

    ``steps`` and ``events`` are the lines as dicts (NaN and infinities as floats); the
    methods give objects.
    """

    header: dict
    steps: list = field(default_factory=list)
    events: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # e.g. "line 812 is truncated (skipped)"
    path: str = ""
    lines: list = field(default_factory=list)  # ("step" | "event" | "header", dict) after the header, in file order

    @property
    def format(self) -> int:
        return int(self.header.get("format", FORMAT_VERSION))

    @property
    def layers(self) -> tuple[Layer, ...]:
        """The layer table (format 1 records give names only, kind "other")."""
        return tuple(Layer.from_dict(e) for e in self.header.get("layers", self.header.get("layer_names", [])))

    @property
    def layer_names(self) -> list:
        return [layer.name for layer in self.layers]

    @property
    def has_config(self) -> bool:
        return isinstance(self.header.get("config"), dict)

    def config(self):
        """gradtui's Config of the run's start, from the header; ConfigError when the record has none."""
        from gradtui.config.loader import config_from_header

        return config_from_header(self.header, self.path)

    def series(self, name: str, run: int | None = None) -> list:
        """One field of every step line (optionally of one run), e.g. ``series("loss")``."""
        return [s[name] for s in self.steps if run is None or s.get("run", 0) == run]

    def step_records(self, run: int | None = None) -> list[StepRecord]:
        """The step lines as StepRecord objects (optionally of one run)."""
        return [StepRecord.from_dict(s) for s in self.steps if run is None or s.get("run", 0) == run]

    def alerts(self) -> list[RecordedAlert]:
        """The alert events (raised and cleared) as objects, in file order."""
        from gradtui.diagnosis.alert import Alert

        return [RecordedAlert(int(e["step"]), int(e.get("run", 0)), e["event"][len("alert_"):], Alert.from_dict(e["alert"]))
                for e in self.events if e.get("event") in ("alert_raised", "alert_cleared")]

    def to_pandas(self):
        """A pandas DataFrame, one row per step line: columns ``run``, ``time``, ``step``, ``loss``,
        ``grad_norm_total``, ``clipped``, ``nonfinite``, ``nonfinite_layer``, then one column per
        statistic and layer named ``"<statistic>/<layer>"`` (``"grad_norm/hidden.0"``). Needs pandas."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Record.to_pandas needs pandas (pip install pandas); Record.steps holds the same data as dicts") from None
        names = self.layer_names
        rows = []
        for s in self.steps:
            row = {"run": s.get("run", 0), "time": s.get("time")}
            row.update({k: s.get(k) for k in SCALARS})
            for stat in PER_LAYER:
                values = s.get(stat) or [None] * len(names)
                row.update({f"{stat}/{name}": v for name, v in zip(names, values)})
            rows.append(row)
        return pd.DataFrame(rows)


def read_record(path: str | os.PathLike) -> Record:
    """Load a JSON Lines record (header, steps, events) for analysis.

    A truncated or unparsable *last* line (a run killed mid-write) is skipped and noted
    in ``Record.problems``; a bad line anywhere else, a missing header or an unreadable
    file raises :class:`~gradtui.record.RecordError`. A second header (a new run written
    into the same file) is noted in ``problems``; its lines follow with their own ``run``.
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
            kind, obj = parse_line(line)
        except (ValueError, UnicodeDecodeError) as err:
            truncated = i == last_index and not raw.endswith(b"\n")
            if i == last_index:
                what = "is truncated" if truncated else "does not parse"
                record.problems.append(f"line {i + 1} {what} (skipped): the run probably ended while writing it")
                continue
            raise RecordError(f"{p}: line {i + 1} is not valid JSON ({err}); the record is damaged") from None
        if not record.header:
            if kind != "header":
                raise RecordError(f"{p}: line 1 is not a gradtui record header (no \"type\": \"header\")")
            record.header = check_header(obj, str(p))
        elif kind == "step":
            record.steps.append(obj)
            record.lines.append((kind, obj))
        elif kind == "event":
            record.events.append(obj)
            record.lines.append((kind, obj))
        elif kind == "header":
            record.problems.append(f"line {i + 1} is a second header: another run was written into the same file")
            try:
                record.lines.append((kind, check_header(obj, f"{p}: line {i + 1}")))
            except RecordError as err:
                record.problems.append(f"{err} (skipped)")
        else:
            record.problems.append(f"line {i + 1} has unknown type {obj.get('type')!r} (skipped)")
    if not record.header:
        if last_index < 0:
            raise RecordError(f"{p}: the record is empty (the run ended before its header was written)")
        raise RecordError(f"{p}: no header line; is this a gradtui record?")
    return record


class RecordIndex:
    """A finished record indexed for playback without holding it in memory: the header, and for
    every later line its kind and byte offset (and, for step lines, the step and run); a line
    is parsed again when it is needed. Validated like :func:`read_record` (same errors and
    problems). Memory: a few bytes per line, whatever the record's size."""

    KINDS = ("step", "event", "header")

    def __init__(self, path: str | os.PathLike):
        from array import array

        self.path = str(Path(path).expanduser())
        self.header: dict = {}
        self.problems: list = []
        self.kinds = array("b")  # index into KINDS
        self.offsets = array("q")
        self.step_lines = array("q")  # line index of every step line
        self.steps = array("q")  # its step
        self.runs = array("q")  # its run
        try:
            self._file = open(self.path, "rb")
        except OSError as err:
            raise RecordError(f"cannot read the record {self.path}: {_describe(err)}") from None
        self._scan()

    def _scan(self) -> None:
        f, p = self._file, self.path
        offset, number, pending = 0, 0, None  # pending: (number, error) of a bad line, fatal unless last
        for raw in f:
            number += 1
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            if pending is not None:
                raise RecordError(f"{p}: line {pending[0]} is not valid JSON ({pending[1]}); the record is damaged")
            try:
                kind, obj = parse_line(raw)
            except (ValueError, UnicodeDecodeError) as err:
                pending = (number, err, raw.endswith(b"\n"))
                continue
            if not self.header:
                if kind != "header":
                    raise RecordError(f"{p}: line 1 is not a gradtui record header (no \"type\": \"header\")")
                self.header = check_header(obj, p)
                continue
            if kind == "other":
                self.problems.append(f"line {number} has unknown type {obj.get('type')!r} (skipped)")
                continue
            if kind == "header":
                self.problems.append(f"line {number} is a second header: another run was written into the same file")
            elif kind == "step":
                self.step_lines.append(len(self.kinds))
                self.steps.append(int(obj.get("step", 0)))
                self.runs.append(int(obj.get("run", 0)))
            self.kinds.append(self.KINDS.index(kind))
            self.offsets.append(start)
        if pending is not None:
            what = "does not parse" if pending[2] else "is truncated"
            self.problems.append(f"line {pending[0]} {what} (skipped): the run probably ended while writing it")
        if not self.header:
            if number == 0:
                raise RecordError(f"{p}: the record is empty (the run ended before its header was written)")
            raise RecordError(f"{p}: no header line; is this a gradtui record?")

    def __len__(self) -> int:
        return len(self.kinds)

    def line(self, i: int) -> tuple[str, dict]:
        """The i-th line after the header, parsed: (kind, dict)."""
        if self._file.closed:
            self._file = open(self.path, "rb")
        self._file.seek(self.offsets[i])
        return parse_line(self._file.readline())

    def close(self) -> None:
        self._file.close()
