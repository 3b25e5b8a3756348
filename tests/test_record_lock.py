"""One writer per record: a second writer is refused (exit 2) whatever --force says, and the
first one's lines stay intact; concurrent exports never collide on a file name."""

import threading
import time
from types import SimpleNamespace

import pytest

from gradtui import read_record
from gradtui.record import RecordError, RecordWriter
from gradtui.monitor.journal import Journal
from test_cli import TINY, gradtui


def test_a_second_writer_is_refused_and_the_first_record_stays_whole(tmp_path):
    path = tmp_path / "same.jsonl"
    with RecordWriter(path) as first:
        first.header({"model": {}}, ["hidden.0"])
        first.step({"step": 1, "loss": 0.5})
        with pytest.raises(RecordError, match="is being written by another gradtui run"):
            RecordWriter(path, force=True)
        r = gradtui("run", "vanishing-sigmoid", *TINY, "--steps", "5", "--record", str(path), "--force")
        assert r.returncode == 2, r.stderr
        assert "is being written by another gradtui run" in r.stderr and "Traceback" not in r.stderr
        first.event("end", 1)
    rec = read_record(path)
    assert [s["step"] for s in rec.steps] == [1] and rec.events[-1]["event"] == "end" and not rec.problems
    with RecordWriter(path, force=True) as again:  # once the first writer closed, --force overwrites
        again.header({"model": {}}, ["hidden.0"])
    assert len(read_record(path).steps) == 0


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_end_line_is_written_once_when_two_threads_close(tmp_path):
    """The worker and Session.stop() may close the record at the same moment (a stop that timed
    out while the worker finished): one end line, whatever the timing. Writes are slowed down so
    that both closers are inside close() together."""
    journal = Journal(tmp_path / "r.jsonl")
    journal.header(SimpleNamespace(to_dict=lambda: {}), ["output"], {})
    real = journal.writer._file

    class SlowFile:
        closed = property(lambda self: real.closed)

        def write(self, data):
            time.sleep(0.05)
            return real.write(data)

        def __getattr__(self, name):
            return getattr(real, name)

    journal.writer._file = SlowFile()
    threads = [threading.Thread(target=journal.close, args=("stopped", 3, 0, "")) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    journal.event("eval", 4, 0, loss=1.0)  # after closing: dropped, not an error
    rec = read_record(tmp_path / "r.jsonl")
    assert [e["event"] for e in rec.events] == ["end"]


def _snap():
    from gradtui.monitor.history import History

    return SimpleNamespace(config=SimpleNamespace(name="demo", to_dict=lambda: {}), layers=(), layer_names=("output",),
                           history=History(10).view(), run=0)


def test_an_export_name_taken_by_another_process_moves_on(tmp_path, monkeypatch):
    """Another exporter may create the same file name between a check and the creation: the
    name is claimed by creating the file, so that cannot fail (nor suggest --force)."""
    from pathlib import Path

    journal = Journal()
    first = journal.export(_snap(), tmp_path)
    monkeypatch.setattr(Path, "exists", lambda self: False)  # every check comes too early
    second = journal.export(_snap(), tmp_path)
    third = journal.export(_snap(), tmp_path)
    assert len({first, second, third}) == 3 and all(read_record(p).header["export"] for p in (first, second, third))


def test_concurrent_exports_get_distinct_files(tmp_path):
    from gradtui.monitor.history import History

    history = History(10)
    snap = SimpleNamespace(config=SimpleNamespace(name="demo", to_dict=lambda: {}), layers=(), layer_names=("output",),
                           history=history.view(), run=0)
    journal = Journal()
    paths, errors = [], []
    barrier = threading.Barrier(6)

    def export():
        barrier.wait()
        try:
            paths.append(journal.export(snap, tmp_path))
        except RecordError as err:  # pragma: no cover - the failure this test looks for
            errors.append(str(err))

    threads = [threading.Thread(target=export) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(paths)) == 6
    assert all(read_record(p).header["export"] for p in paths)
