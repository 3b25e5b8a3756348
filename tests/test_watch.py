"""`gradtui watch`: follow a record while another process writes it (a real subprocess), through
a late start, pauses, a truncation, a rewrite, a second run in the same file and the end; and
`gradtui watch` and `gradtui replay` in a real pseudo-terminal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import textwrap

import pytest

from gradtui.sources.follow import FollowSource
from gradtui.ui.app import GradApp

from conftest import record_live_run, tiny, wait_for

ENV_TERM = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}

WRITER = textwrap.dedent("""
    import os, sys
    target, first, second = sys.argv[1:4]
    a = open(first, "rb").read().splitlines(keepends=True)
    b = open(second, "rb").read().splitlines(keepends=True)
    pos = 0
    out = None
    def write(lines):
        for line in lines:
            out.write(line)
            out.flush()
    for command in sys.stdin:
        name, _, arg = command.strip().partition(" ")
        n = int(arg or 0)
        if name == "create":      # the record appears: header and the first n lines after it
            out = open(target, "ab", buffering=0)
            write(a[: 1 + n]); pos = 1 + n
        elif name == "append":    # n more lines
            write(a[pos : pos + n]); pos += n
        elif name == "half":      # half a line, the rest later
            out.write(a[pos][:10])
        elif name == "truncate":  # the same file, cut to nothing, then the other record's start
            out.truncate(0); out.seek(0)
            write(b[: 1 + n])
        elif name == "rewrite":   # another file renamed over the path (a new inode)
            tmp = target + ".tmp"
            with open(tmp, "wb") as f:
                f.writelines(a[: 1 + n])
            os.replace(tmp, target)
            out.close(); out = open(target, "ab", buffering=0); pos = 1 + n
        elif name == "newrun":    # a second header in the same file: another run
            write(b[: 1 + n])
        elif name == "end":
            write([l for l in a if b'"event":"end"' in l])
        print("ok", flush=True)
""")


@pytest.fixture(scope="module")
def two_records(tmp_path_factory):
    d = tmp_path_factory.mktemp("sources")
    first, second = d / "a.jsonl", d / "b.jsonl"
    record_live_run(tiny(**{"train.seed": 1}), first, 60)
    record_live_run(tiny(**{"train.seed": 2, "model.depth": 4}), second, 60)
    return first, second


class Writer:
    def __init__(self, target, first, second):
        self.proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(first), str(second)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


def steps_of(path, n):
    """The step number of the n-th step line of a record (lines after the header)."""
    import json

    lines = [json.loads(line) for line in path.read_text().splitlines()[1 : 1 + n]]
    return max(obj["step"] for obj in lines if obj["type"] == "step")


def test_follow_a_record_while_a_subprocess_writes_it(tmp_path, two_records):
    first, second = two_records
    target = tmp_path / "live.jsonl"
    src = FollowSource(target, quiet=0.5).start()
    write = Writer(target, first, second)
    try:
        assert wait_for(lambda: src.snapshot().status == "waiting", 10)
        assert "waiting for the record" in src.snapshot().message
        write("create 30")  # the record appears late
        step = steps_of(first, 30)
        assert wait_for(lambda: src.snapshot().step == step, 10), src.snapshot().message
        snap = src.snapshot()
        assert snap.layer_names == ("hidden.0", "hidden.1", "hidden.2", "output") and snap.config.train.seed == 1
        assert wait_for(lambda: src.snapshot().status == "paused", 10)  # the writer pauses
        assert "no new lines since" in src.snapshot().message
        write("half")  # half a line: not read until it is whole
        write("append 20")
        step = steps_of(first, 50)
        assert wait_for(lambda: src.snapshot().step == step and src.snapshot().status == "running", 10)
        assert src.snapshot().history.steps[-1] == step and src.snapshot().alerts  # vanishing, as live
        write("truncate 10")  # cut and refilled with the other record
        step = steps_of(second, 10)
        assert wait_for(lambda: "truncated" in src.snapshot().message and src.snapshot().step == step, 10), src.snapshot().message
        assert len(src.snapshot().layer_names) == 5 and src.snapshot().history.steps[0] == 1
        write("rewrite 40")  # another file moved over the path
        step = steps_of(first, 40)
        assert wait_for(lambda: "rewritten" in src.snapshot().message and src.snapshot().step == step, 10), src.snapshot().message
        write("newrun 5")  # a second header in the same file
        step = steps_of(second, 5)
        assert wait_for(lambda: "new run" in src.snapshot().message and src.snapshot().step == step, 10), src.snapshot().message
        assert len(src.snapshot().layer_names) == 5 and len(src.snapshot().history.steps) == step
        write("end")
        assert wait_for(lambda: src.snapshot().status == "finished", 10)
        assert "the writer ended (finished)" in src.snapshot().message
    finally:
        write.close()
        assert src.stop(2.0)


def test_watch_screen_at_80x24(tmp_path, two_records):
    first, _ = two_records
    src = FollowSource(first)
    app = GradApp(None, source=src, name="watch a.jsonl")

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            assert await asyncio.to_thread(wait_for, lambda: src.snapshot().status == "finished", 10)
            app.redraw_now()
            await pilot.pause()
            header = app.panels.header.render().plain
            assert "writer ended" in header and "step 60" in header and "watch a.jsonl" in header
            assert "vanishing" in app.panels.alerts.content.plain
            await pilot.press("space")  # the writer is in control: unavailable, with the reason
            await pilot.pause()
            assert any("unavailable" in n.message and "another process" in n.message for n in app._notifications)

    asyncio.run(go())
    assert not src._thread.is_alive()


@contextlib.contextmanager
def gradtui_in_a_terminal(args: list, cwd):
    """``gradtui ARGS`` in a real 80x24 pseudo-terminal; after the block, q must quit it with exit 0."""
    pexpect = pytest.importorskip("pexpect")
    from conftest import CMD

    child = pexpect.spawn(CMD[0], CMD[1:] + args, env=dict(ENV_TERM), cwd=str(cwd), dimensions=(24, 80),
                          encoding="utf-8", codec_errors="replace", timeout=60)
    try:
        yield child
        child.send("q")
        child.expect(pexpect.EOF, timeout=30)
    finally:
        if child.isalive():
            child.terminate(force=True)
    child.close()
    assert child.exitstatus == 0


def test_gradtui_watch_in_a_real_terminal(tmp_path, two_records):
    """`gradtui watch` started before the record exists, in a real pseudo-terminal; the record
    appears, the screen follows it to its end line; q quits cleanly."""
    first, _ = two_records
    target = tmp_path / "late.jsonl"
    with gradtui_in_a_terminal(["watch", str(target)], tmp_path) as child:
        child.expect("waiting for the record", timeout=60)
        target.write_bytes(first.read_bytes())
        child.expect("writer ended", timeout=30)


def test_gradtui_replay_in_a_real_terminal(tmp_path, two_records):
    """`gradtui replay --paused` in a real pseudo-terminal: the position, one step with →, q quits."""
    first, _ = two_records
    with gradtui_in_a_terminal(["replay", "--paused", str(first)], tmp_path) as child:
        child.expect("step 0 / 60", timeout=60)
        child.send("\x1b[C")  # the right arrow
        child.expect("step 1 / 60", timeout=30)
