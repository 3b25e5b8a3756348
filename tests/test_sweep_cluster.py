"""`gradtui sweep` on real Dask: a LocalCluster, a `dask scheduler` with two `dask worker`
processes started here on free localhost ports, a worker killed mid-sweep, Ctrl-C and resume,
rows equal to plain Experiment runs, and bad input (exit 2, one message, no traceback)."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import gradtui

BIN = Path(sys.executable).parent
CMD = [str(BIN / "gradtui")] if (BIN / "gradtui").exists() else [sys.executable, "-m", "gradtui.cli"]
DASK = str(BIN / "dask")
ENV = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
TINY = ["vanishing-tanh-standard", "--set", "model.width=8", "--set", "data.samples=256", "--set", "train.batch_size=32",
        "--set", "train.eval_every=10"]
SMALL = [*TINY, "--grid", "model.depth=2,3", "--grid", "sigma_w2=1,2", "--steps", "30"]
# cells of about a second each, so that a worker is busy when it is killed or Ctrl-C arrives
SLOW = ["vanishing-tanh-standard", "--set", "model.width=64", "--set", "data.samples=512", "--set", "train.eval_every=500",
        "--grid", "model.depth=8,10", "--grid", "sigma_w2=1,1.5,2,2.5", "--steps", "1500"]


def sweep(*args, timeout=300):
    return subprocess.run(CMD + ["sweep", *args], capture_output=True, text=True, timeout=timeout, env=ENV)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_ends(pgid: int, within: float) -> bool:
    """True once no process of the group is left (exited workers may linger a moment as zombies)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def rows(out: Path) -> pd.DataFrame:
    path = out / "results.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


class Cluster:
    """A real `dask scheduler` and `dask worker` processes (no nanny: killing one kills the worker)."""

    def __init__(self, workers: int):
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)]
        self.workers = [subprocess.Popen([DASK, "worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                          "--name", f"w{i}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
                        for i in range(workers)]
        self.procs += self.workers
        from dask.distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)

    def stop(self):
        """Workers first (SIGINT: they close in about a second; SIGTERM took over 10 s), then the scheduler."""
        for group, sig in ((self.workers, signal.SIGINT), (self.procs[:1], signal.SIGTERM)):
            for p in group:
                if p.poll() is None:
                    p.send_signal(sig)
            for p in group:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


@pytest.fixture
def cluster():
    c = Cluster(2)
    yield c
    c.stop()
    assert all(p.poll() is not None for p in c.procs)


def check_rows_equal_plain_runs(table: pd.DataFrame, steps: int):
    """Every row's numbers are those of an ordinary Experiment of the same cell (same seed)."""
    base = gradtui.load_config("vanishing-tanh-standard")
    for _, row in table.iterrows():
        # 'standard' init has n Var(W) = 1/3, so sigma_w2 needs init_gain = sqrt(3 sigma_w2)
        cfg = base.with_overrides({"model.width": 8, "data.samples": 256, "train.batch_size": 32, "train.eval_every": 10,
                                   "model.depth": int(row["model.depth"]), "model.init_gain": (3 * row["sigma_w2"]) ** 0.5,
                                   "train.seed": int(row["seed"])})
        with threadpool_limits(limits=1):
            exp = gradtui.Experiment(cfg)
            records = exp.run(steps)
            ev = exp.evaluate()
        assert row["final_loss"] == ev["loss"] and row["accuracy"] == ev["accuracy"], row["cell"]
        assert row["train_loss"] == float(records[-1].loss)
        assert row["attenuation"] == float(records[0].delta_norm[0] / records[0].delta_norm[int(row["model.depth"]) - 1])


def test_small_sweep_on_a_local_cluster(tmp_path):
    out = tmp_path / "s"
    r = sweep(*SMALL, "--seeds", "2", "--workers", "2", "--records", "--out", str(out))
    assert r.returncode == 0, r.stderr
    table = rows(out)
    assert len(table) == 8 and table["cell"].is_unique
    assert list(table.columns[:5]) == ["cell", "model.depth", "sigma_w2", "seed", "trained"]
    assert set(table["model.depth"]) == {2, 3} and set(table["sigma_w2"]) == {1.0, 2.0} and set(table["seed"]) == {0, 1}
    assert table["error"].isna().all() and (table["steps"] == 30).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert [g["key"] for g in manifest["sweep"]["grid"]] == ["model.depth", "sigma_w2"]
    assert manifest["sweep"]["config"]["model"]["width"] == 8 and manifest["sweep"]["seeds"] == [0, 1]
    assert {"dask", "distributed", "gradtui", "numba"} <= set(manifest["runs"][0]["versions"])
    assert (out / "heatmap.svg").read_text().startswith("<svg")
    assert "8/8 cells" in r.stdout and "local Dask cluster of 2" in r.stderr
    check_rows_equal_plain_runs(table, 30)
    records = sorted((out / "records").glob("*.jsonl"))
    assert len(records) == 8
    rec = gradtui.read_record(records[0])
    assert rec.header["config"]["model"]["width"] == 8 and len(rec.steps) == 30
    assert [e["step"] for e in rec.events if e["event"] == "eval"] == [10, 20, 30]


def test_sweep_on_a_dask_scheduler_with_two_workers(tmp_path, cluster):
    out = tmp_path / "s"
    r = sweep(*TINY, "--grid", "model.depth=2,3,4", "--grid", "sigma_w2=1,2", "--steps", "30",
              "--scheduler", cluster.address, "--out", str(out))
    assert r.returncode == 0, r.stderr
    table = rows(out)
    assert len(table) == 6 and table["error"].isna().all()
    assert f"the Dask cluster at {cluster.address}" in r.stderr
    pids = {w.split(":")[1] for w in table["worker"]}
    assert pids <= {str(p.pid) for p in cluster.workers}  # the cells ran in the workers started here
    check_rows_equal_plain_runs(table, 30)


@contextlib.contextmanager
def sweep_running(args, out: Path, rows_wanted: int, **popen):
    """Start `gradtui sweep` and yield (process, table) once the table has rows_wanted rows."""
    proc = subprocess.Popen(CMD + ["sweep", *args, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV, **popen)
    try:
        deadline = time.monotonic() + 240
        while len(rows(out)) < rows_wanted and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        table = rows(out)
        assert rows_wanted <= len(table) < 8, f"{len(table)} rows"
        yield proc, table
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_killed_worker_s_cells_are_retried(tmp_path, cluster):
    out = tmp_path / "s"
    with sweep_running([*SLOW, "--scheduler", cluster.address], out, 1) as (proc, first):
        victim_pid = int(first["worker"].iloc[0].split(":")[1])
        victim = next(w for w in cluster.workers if w.pid == victim_pid)
        victim.kill()  # it has moved on to its next cell (8 cells queued on 2 workers)
        victim.wait()
        stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    table = rows(out)
    assert len(table) == 8 and table["cell"].is_unique and table["error"].isna().all()
    after = table.iloc[len(first):]
    survivors = {str(w.pid) for w in cluster.workers if w.pid != victim_pid}
    assert {w.split(":")[1] for w in after["worker"]} <= survivors


def test_ctrl_c_keeps_finished_cells_and_the_same_command_resumes(tmp_path):
    out = tmp_path / "s"
    args = [*SLOW, "--workers", "2"]
    with sweep_running(args, out, 2, start_new_session=True) as (proc, _):
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    kept = rows(out)
    assert 2 <= len(kept) < 8 and "Traceback" not in stderr
    assert f"{len(kept)} of 8 cells finished" in stderr and "run the same command" in stderr
    assert group_ends(proc.pid, within=15)  # no worker process outlives the sweep
    again = sweep(*args, "--out", str(out))
    assert again.returncode == 0, again.stderr
    table = rows(out)
    assert len(table) == 8 and table["cell"].is_unique
    assert f"({len(kept)} from an earlier run)" in again.stdout
    assert table.iloc[: len(kept)].equals(kept)  # the finished cells were not run again


@pytest.mark.parametrize("args, message", [
    (["--grid", "model.dpth=2,3"], "unknown key model.dpth; did you mean model.depth?"),
    (["--grid", "model.depth=10:5:1"], "is an empty range"),
    (["--grid", "model.depth=1:30:1", "--grid", "train.lr=0.01:0.2:0.01"], "the grid has 600 cells"),
    (["--grid", "model.depth=2,3", "--grid", "sigma_w2=1,2", "--grid", "train.lr=0.1,0.2"], "at most two"),
    (["--grid", "model.depth=0,2"], "cell model.depth=0,seed=0: model.depth = 0 is not allowed"),
    (["--grid", "model.depth=2", "--show", "loss"], "--show loss: allowed:"),
])
def test_bad_input_is_one_message_and_exit_2(tmp_path, args, message):
    r = sweep(*TINY, *args, "--out", str(tmp_path / "s"))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "s").exists()  # nothing started, nothing written


def test_more_than_the_maximum_runs_with_yes_only(tmp_path):
    r = sweep(*TINY, "--grid", "model.depth=1:401:1", "--out", str(tmp_path / "s"))
    assert r.returncode == 2 and "more than 400 needs --yes" in r.stderr


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:{port}", "nonsense-address"])
def test_unreachable_scheduler_is_a_clear_error_within_seconds(tmp_path, address):
    address = address.format(port=free_port())
    t0 = time.monotonic()
    r = sweep(*SMALL, "--scheduler", address, "--out", str(tmp_path / "s"), timeout=60)
    assert r.returncode == 2 and f"cannot reach the Dask scheduler at {address}" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and time.monotonic() - t0 < 20


def test_another_sweep_in_the_same_out_is_refused(tmp_path):
    out = tmp_path / "s"
    assert sweep(*TINY, "--grid", "model.depth=2", "--steps", "5", "--workers", "1", "--out", str(out)).returncode == 0
    same = sweep(*TINY, "--grid", "model.depth=2", "--steps", "5", "--workers", "1", "--out", str(out))
    assert same.returncode == 0 and "no cluster (every cell is in the table already)" in same.stderr
    assert "1/1 cells (1 from an earlier run)" in same.stdout and (out / "heatmap.svg").exists()
    r = sweep(*TINY, "--grid", "model.depth=2", "--steps", "6", "--workers", "1", "--out", str(out))
    assert r.returncode == 2 and "holds another sweep (steps differs: 5 there, 6 now)" in r.stderr
    assert len(rows(out)) == 1
