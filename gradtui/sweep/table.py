"""The results table, `results.csv` in --out: one row per finished cell, appended as it finishes.

CSV rather than Parquet: a finished cell is one appended, flushed line, so Ctrl-C or a crash
keeps every finished cell without rewriting the file (Parquet files are written whole, and
would need pyarrow, which the sweep extra does not install); any tool reads it
(`pandas.read_csv`, a spreadsheet, `column -s, -t`). A few hundred rows is small either way.

Columns: `cell` (the cell's name, which resume matches), one column per swept key named by the
key (`model.depth`; `sigma_w2` for a swept weight variance), `seed`, `sigma_w2` (the hidden
layers' fan_in * Var(W), always written: the phase diagram's axis), then the outcomes
(gradtui.sweep.cell.OUTCOMES) and `worker`. Floats are written with repr, so they read back
exactly; an empty field is a missing value.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from gradtui.sweep.cell import OUTCOMES
from gradtui.sweep.grid import SIGMA_W2

RESULTS = "results.csv"


def columns(axis_keys: list[str]) -> list[str]:
    extra = [] if SIGMA_W2 in axis_keys else [SIGMA_W2]
    return ["cell", *axis_keys, "seed", *extra, *OUTCOMES, "worker"]


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


class ResultsTable:
    """Append-only CSV of finished cells; reads back the cells already done for resume."""

    def __init__(self, out_dir: Path, axis_keys: list[str]):
        self.path = Path(out_dir) / RESULTS
        self.columns = columns(axis_keys)
        self._file = None

    def finished(self) -> dict[str, dict]:
        """Rows already in the table, by cell name (the last row wins if a cell appears twice)."""
        if not self.path.exists():
            return {}
        with open(self.path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames and list(reader.fieldnames) != self.columns:
                raise ValueError(f"{self.path} has columns {', '.join(reader.fieldnames)}, not this sweep's "
                                 f"{', '.join(self.columns)}")
            return {row["cell"]: row for row in reader if row.get("cell") and row.get(self.columns[-1]) is not None}

    def append(self, row: dict) -> None:
        """Write one finished cell as one line and flush it to the OS."""
        if self._file is None:
            _cut_partial_line(self.path)
            new = not self.path.exists() or self.path.stat().st_size == 0
            self._file = open(self.path, "a", newline="", encoding="utf-8")
            self._writer = csv.writer(self._file)
            if new:
                self._writer.writerow(self.columns)
        self._writer.writerow([_text(row.get(c)) for c in self.columns])
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _cut_partial_line(path: Path) -> None:
    """A kill during a write can leave half a line at the end: cut it off before appending."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        data = f.read()
        if not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def parse_number(text: str):
    """A table field back to a value: '' -> None, 'true'/'false' -> bool, numbers -> float."""
    if text is None or text == "":
        return None
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text)
    except ValueError:
        return text
