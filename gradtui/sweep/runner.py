"""Running a plan on Dask (dask.distributed): a LocalCluster sized to the machine, or an existing
cluster given by its scheduler's address.

Each cell is one task (gradtui.sweep.cell.run_cell) submitted with `client.submit`; results come
back as they finish and each is appended to the table at once. Dask reschedules the tasks of a
worker that dies on the workers that remain (a task whose workers die more than
`distributed.scheduler.allowed-failures` times comes back as a failed cell). Ctrl-C cancels what
is still pending; every finished cell is already in the table, and the same command resumes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from pathlib import Path

from gradtui.sweep.cell import run_cell
from gradtui.sweep.heatmap import Heatmap
from gradtui.sweep.table import ResultsTable, parse_number

CONNECT_TIMEOUT = 5  # seconds to reach a --scheduler before giving up
_WORKER_LOGS = "DASK_LOGGING__DISTRIBUTED"  # dask config from the environment: workers' log level
SIGMA_KEYS = ("sigma_w2", "model.init_gain", "model.init_std", "model.init")


class SweepError(Exception):
    """Bad input or an unusable cluster: the message says what is wrong; exit status 2."""


def local_worker_count() -> int:
    """One single-threaded worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def connect(scheduler: str | None, workers: int | None):
    """A dask.distributed Client, and a text saying where it runs. Raises SweepError."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT}s")
        except (OSError, TimeoutError, ValueError, TypeError) as err:
            raise SweepError(f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT} s "
                             f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no answer'}); "
                             "start one with `dask scheduler` and workers with `dask worker ADDRESS` "
                             "(gradtui installed where they run), or leave out --scheduler for a local cluster") from None
        return client, f"the Dask cluster at {scheduler}"
    n = workers or local_worker_count()
    with _workers_ignore_ctrl_c():
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
    return Client(cluster), f"a local Dask cluster of {n} single-threaded worker process{'es' if n != 1 else ''}"


@contextlib.contextmanager
def _workers_ignore_ctrl_c():
    """Start local worker processes quiet and with SIGINT ignored (inherited; Python keeps an ignored SIGINT):
    Ctrl-C reaches the whole process group, and only this process should answer it, by
    cancelling the pending cells and closing the cluster, not every worker with a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the workers' own logs (a heartbeat that missed the scheduler while it shut down after Ctrl-C)
    # are noise on this screen: a cell's failure is reported in its row
    quiet = os.environ.get(_WORKER_LOGS)
    os.environ[_WORKER_LOGS] = "critical"
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if quiet is None:
            os.environ.pop(_WORKER_LOGS, None)
        else:
            os.environ[_WORKER_LOGS] = quiet


def close(client) -> None:
    cluster = getattr(client, "cluster", None)
    try:
        client.close(timeout=5)
    except Exception:  # noqa: BLE001 - closing after Ctrl-C must not raise a second error
        pass
    if cluster is not None:
        try:
            cluster.close(timeout=5)
        except Exception:  # noqa: BLE001
            pass


def sigma_w2_of(cfg) -> float | None:
    """fan_in * Var(W) of the hidden layers, or None for a recurrent net."""
    from gradtui.theory import weight_var

    m = cfg.model
    if cfg.is_recurrent:
        return None
    return m.width * weight_var(m.init, m.width, m.width, m.init_std, m.init_gain)


def make_heatmap(plan) -> Heatmap:
    """An empty heatmap over the plan's axes: x the last swept key, y the first (if two)."""
    def ordered(values):
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        return tuple(sorted(values)) if numeric else tuple(values)

    x_axis = plan.axes[-1]
    y_axis = plan.axes[0] if len(plan.axes) > 1 else None
    x_values = ordered(x_axis.values)
    y_values = ordered(y_axis.values) if y_axis else (None,)
    x_sigma = None
    if x_axis.key in SIGMA_KEYS and (y_axis is None or y_axis.key != "model.width"):
        first = plan.cells[0]
        sigmas = []
        for x in x_values:
            values = tuple(x if a is x_axis else v for a, v in zip(plan.axes, first.values))
            sigmas.append(sigma_w2_of(plan.config(type(first)(values, first.seed))))
        if all(s is not None for s in sigmas) and all(a < b for a, b in zip(sigmas, sigmas[1:])):
            x_sigma = tuple(sigmas)
    return Heatmap(plan.metric, x_axis.key, x_values, y_axis.key if y_axis else None, y_values, x_sigma,
                   seeds=len(plan.seeds), chance=chance(plan.base))


def chance(cfg) -> float:
    """The accuracy of guessing the most common class, roughly 1/classes (0 for regression)."""
    task = cfg.data.task
    if task == "spirals":
        return 1.0 / cfg.data.classes
    return 0.5 if task in ("moons", "circles", "xor") else 0.0


def theory_overlay(plan, hm: Heatmap):
    if not hm.x_sigma_w2 or hm.y_key != "model.depth":
        return None
    from gradtui.sweep.overlay import overlay_for

    return overlay_for(plan.base, hm.x_sigma_w2[0], hm.x_sigma_w2[-1])


def place(plan, hm: Heatmap, row: dict) -> None:
    """Add a table row to the heatmap."""
    x = row[plan.axes[-1].key]
    y = row[plan.axes[0].key] if len(plan.axes) > 1 else None
    hm.add(x, y, row)


def typed_row(plan, stored: dict) -> dict:
    """A row read back from the table, with the axis values in the plan's own types."""
    row = {k: parse_number(v) for k, v in stored.items()}
    by_ident = {c.ident(plan.axes): c for c in plan.cells}
    cell = by_ident[stored["cell"]]
    for a, v in zip(plan.axes, cell.values):
        row[a.key] = v
    return row


def cell_row(plan, cell, outcome: dict) -> dict:
    cfg = plan.config(cell)
    row = {"cell": cell.ident(plan.axes), **{a.key: v for a, v in zip(plan.axes, cell.values)}, "seed": cell.seed}
    row.setdefault("sigma_w2", sigma_w2_of(cfg))
    row.update(outcome)
    return row


def run(plan, out_dir: Path, client, view_factory, records: bool = False, live=None) -> dict:
    """Submit every unfinished cell, write each result as it arrives; returns counts.

    view_factory(hm, progress) -> a rich renderable; live: a rich Live (or None) to update.
    KeyboardInterrupt propagates after the pending cells are cancelled."""
    from dask.distributed import as_completed

    from gradtui.sweep.live import Progress

    table = ResultsTable(out_dir, plan.axis_keys)
    done = table.finished()
    hm = make_heatmap(plan)
    known = {c.ident(plan.axes) for c in plan.cells}
    for ident, stored in done.items():
        if ident in known:
            place(plan, hm, typed_row(plan, stored))
    todo = [c for c in plan.cells if c.ident(plan.axes) not in done]
    progress = Progress(len(plan.cells), len(plan.cells) - len(todo))
    view = view_factory(hm, progress)
    record_dir = Path(out_dir) / "records"
    if records:
        record_dir.mkdir(exist_ok=True)
    futures = {}
    for cell in todo:
        ident = cell.ident(plan.axes)
        path = str((record_dir / (ident.replace(",", "_").replace("=", "-") + ".jsonl")).resolve()) if records else None
        fut = client.submit(run_cell, plan.config(cell), plan.steps, plan.threshold, path, pure=False,
                            key=f"gradtui-cell-{ident}-{time.time_ns()}")
        futures[fut] = cell
    pending = as_completed(list(futures)) if futures else None
    try:
        while pending is not None and not pending.is_empty():
            batch = pending.next_batch(block=False)
            for fut in batch:
                cell = futures.pop(fut)
                try:
                    outcome = fut.result()
                except Exception as err:  # noqa: BLE001 - a lost cell is a failed result, not a crash
                    outcome = {"trained": False, "nonfinite": False, "steps": 0,
                               "error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
                row = cell_row(plan, cell, outcome)
                table.append(row)
                place(plan, hm, row)
                progress.finished(bool(row.get("error")) or bool(row.get("nonfinite")))
            progress.workers = len(client.scheduler_info(n_workers=-1).get("workers", {})) if not batch else progress.workers
            if live is not None:
                live.update(view, refresh=True)
            if not batch:
                time.sleep(0.25)
    finally:
        if futures:
            client.cancel(list(futures))
        table.close()
    return {"hm": hm, "progress": progress, "ran": len(todo), "skipped": len(plan.cells) - len(todo)}


def summary(plan, hm: Heatmap) -> str:
    """One sentence on the outcome over the grid."""
    means = [hm.mean(ix, iy) for ix in range(len(hm.x_values)) for iy in range(len(hm.y_values))]
    finite = [m for m in means if m is not None and math.isfinite(m)]
    if not finite:
        return "no cell produced a value"
    return f"{plan.metric}: lowest {min(finite):.3g}, highest {max(finite):.3g} over {len(finite)} grid points"
