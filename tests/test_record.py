"""JSON Lines records: whole lines, refusal to overwrite, disk full, reading back."""

import json
import math
import os

import pytest

from gradtui.record import FORMAT_VERSION, RecordError, RecordWriter, read_record


def _write_sample(path, steps=5):
    with RecordWriter(path) as w:
        w.header({"model": {"depth": 3}}, ["hidden.0", "output"])
        for s in range(1, steps + 1):
            w.step({"step": s, "loss": 1.0 / s, "grad_norm": [0.1, "nan"], "grad_norm_total": "inf"})
        w.event("change", 3, overrides={"model.activation": "relu"})
        w.event("eval", 5, loss="inf")
    return path


def test_roundtrip(tmp_path):
    path = _write_sample(tmp_path / "r.jsonl")
    rec = read_record(path)
    assert rec.header["type"] == "header" and rec.header["format"] == FORMAT_VERSION
    assert rec.layer_names == ["hidden.0", "output"]
    assert [s["step"] for s in rec.steps] == [1, 2, 3, 4, 5]
    assert math.isnan(rec.steps[0]["grad_norm"][1]) and rec.steps[0]["grad_norm_total"] == math.inf
    assert rec.events[0]["event"] == "change" and rec.events[0]["step"] == 3
    assert rec.events[1]["loss"] == math.inf  # NaN and Inf read back as numbers in events too
    assert rec.series("loss")[1] == 0.5
    assert rec.problems == []
    for line in path.read_text().splitlines():
        json.loads(line)


def test_truncated_last_line_is_reported_and_skipped(tmp_path):
    path = _write_sample(tmp_path / "r.jsonl")
    data = path.read_bytes()
    path.write_bytes(data[:-25])  # a kill in the middle of the last line
    rec = read_record(path)
    assert len(rec.steps) == 5 and [e["event"] for e in rec.events] == ["change"]  # the eval line was cut
    assert len(rec.problems) == 1 and "truncated" in rec.problems[0]


def test_damaged_middle_line_is_an_error(tmp_path):
    path = _write_sample(tmp_path / "r.jsonl")
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:10]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordError, match="line 3"):
        read_record(path)


def test_missing_or_empty_or_foreign(tmp_path):
    with pytest.raises(RecordError, match="cannot read"):
        read_record(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(RecordError, match="empty"):
        read_record(tmp_path / "empty.jsonl")
    (tmp_path / "other.jsonl").write_text('{"a": 1}\n')
    with pytest.raises(RecordError, match="header"):
        read_record(tmp_path / "other.jsonl")


def test_refuses_existing_file_unless_forced(tmp_path):
    path = _write_sample(tmp_path / "r.jsonl")
    with pytest.raises(RecordError, match="already exists.*--force"):
        RecordWriter(path)
    RecordWriter(path, force=True).close()
    assert path.read_text() == ""


def test_bad_paths(tmp_path):
    with pytest.raises(RecordError, match="does not exist"):
        RecordWriter(tmp_path / "no" / "r.jsonl")
    with pytest.raises(RecordError, match="directory"):
        RecordWriter(tmp_path)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_is_a_clear_error_and_stops_writing():
    w = RecordWriter("/dev/full", force=True)
    with pytest.raises(RecordError, match="No space left"):
        w.header({}, ["output"])
    assert w.failed
    w.step({"step": 1})  # ignored, no second exception
    w.close()


def test_disk_full_mid_line_leaves_whole_lines(tmp_path, monkeypatch):
    path = tmp_path / "r.jsonl"
    w = RecordWriter(path)
    w.header({}, ["output"])
    w.step({"step": 1, "loss": 0.5})
    real = w._file

    class HalfFull:
        """Writes half of the data, then fails, like a disk that fills up mid-line."""

        def __init__(self):
            self.calls = 0

        def write(self, data):
            self.calls += 1
            if self.calls == 1:
                return real.write(data[: len(data) // 2])
            raise OSError(28, "No space left on device")

        def fileno(self):
            return real.fileno()

        closed = False

        def close(self):
            real.close()

    w._file = HalfFull()
    with pytest.raises(RecordError, match="after 2 lines"):
        w.step({"step": 2, "loss": 0.25})
    w.close()
    rec = read_record(path)
    assert [s["step"] for s in rec.steps] == [1] and rec.problems == []
