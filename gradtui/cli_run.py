"""`gradtui run`: a Session driven headless, with a rich progress bar and a summary at the end."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Column

from gradtui.cli_output import PipeSafeConsole, _fmt, print_summary, theory_line, worst_alert
from gradtui.config.summary import model_summary
from gradtui.record import RecordError

POLL = 0.1  # seconds between progress updates
LARGE_RECORD = 1 << 30  # bytes: a record projected past this is announced at the start


def run_headless(cfg, args) -> int:
    from gradtui.cli import interrupt_status
    from gradtui.engine.kernel_cache import kernel_cache_dir
    from gradtui.session import Session

    steps = args.steps or cfg.train.steps
    try:
        session = Session(cfg, record_path=args.record, every=args.every, force=args.force, max_steps=steps,
                          tier="auto")
    except RecordError as err:
        print(f"gradtui: error: {err}", file=sys.stderr)
        return 2
    out = PipeSafeConsole(highlight=False)
    err_console = PipeSafeConsole(stderr=True, highlight=False)
    t0 = time.perf_counter()
    interrupted = 0
    if not args.quiet:
        err_console.print(describe_run(cfg, steps, args))
        err_console.print(theory_line(cfg), style="dim")
    if args.record:
        size = projected_record_bytes(cfg, steps, args.every)
        if size > LARGE_RECORD:
            print(f"gradtui: note: the record will grow to about {size / 1e9:,.1f} GB ({steps:,} steps, "
                  f"every {args.every}); --every K records every K-th step only", file=sys.stderr)
    try:
        kernel_cache_dir()  # its notice, if any, before the progress bar
        session.start()
        if args.quiet:
            _wait_quiet(session)
        else:
            _wait_with_progress(session, cfg, steps, err_console)
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM (gradtui.cli.Terminated)
        interrupted = interrupt_status(err)
    finally:
        try:
            ended = session.stop(timeout=2.0)
        except KeyboardInterrupt as err:  # a second Ctrl-C or SIGTERM while stopping: close the record now
            interrupted = interrupted or interrupt_status(err)
            ended = session.stop(timeout=0)
    snap = session.snapshot()
    elapsed = time.perf_counter() - t0
    status = 0
    problem = ""
    if interrupted:
        what = "terminated (SIGTERM)" if interrupted == 143 else "interrupted"
        status, problem = interrupted, f"{what} at step {snap.step}" + ("; the record is closed" if args.record else "")
    elif snap.record_error:
        status, problem = 1, snap.record_error
    elif snap.pause_reason == "nonfinite":
        where = snap.latest.get("nonfinite_layer") or "the network"
        status, problem = 1, (f"training stopped at step {snap.step}: non-finite values (NaN or Inf) appeared in {where}, "
                              "so that update was not applied; try one of the fixes listed above")
    elif snap.status == "error" and snap.message.startswith("training failed: MemoryError"):
        status, problem = 1, (f"{snap.message}: the machine ran out of memory (gradtui check estimates what a config "
                              "needs); make the network or the batch smaller")
    elif snap.status == "error":
        status, problem = 1, snap.message
        print(session.error_traceback, file=sys.stderr)  # an internal error: the traceback helps a bug report
    if not ended:
        problem = (problem + "; " if problem else "") + "the last step was still running when gradtui exited"
    if args.quiet:
        loss = snap.latest.get("loss") if snap.latest else None
        alerts = ", ".join(f"{a.kind}" for _, a in snap.raised) or "none"
        line = f"{snap.step} steps in {elapsed:.1f} s, loss {_fmt(loss)}, alerts raised: {alerts}"
        if not problem:  # the one line on stdout says the run succeeded; otherwise stderr says what failed
            out.print(line + (f", record {args.record}" if args.record else ""))
        else:
            problem += f" ({line})"
    else:
        plural = "" if snap.step == 1 else "s"
        out.print(f"{'Interrupted after' if interrupted else 'Trained'} {snap.step} step{plural} in {elapsed:.1f} s.")
        print_summary(snap, out, interrupted=interrupted, record=None if snap.record_error else args.record)
    if problem:
        print(f"gradtui: {problem}", file=sys.stderr)
    return status


def projected_record_bytes(cfg, steps: int, every: int) -> int:
    """The size a record of ``steps`` steps at every ``every``-th step reaches: one step line of
    this config's shape (typical float32 values) times the recorded steps."""
    import json

    import numpy as np

    from gradtui.engine.memory import task_shape
    from gradtui.engine.record import PER_LAYER, StepRecord

    rng = np.random.default_rng(0)
    values = lambda n: rng.lognormal(-5.0, 2.0, n).astype(np.float32).astype(np.float64)  # noqa: E731
    layers = cfg.model.depth + 1
    time_steps = task_shape(cfg)[2] if cfg.is_recurrent else 0
    rec = StepRecord(step=steps, loss=float(values(1)[0]), grad_norm_total=float(values(1)[0]), clipped=False,
                     **{name: values(layers) for name in PER_LAYER},
                     time_delta_norm=values(time_steps) if time_steps else None,
                     forget_gate_mean=values(cfg.model.depth) if cfg.model.kind == "lstm" else None)
    line = {"type": "step", "run": 0, "time": 12345.123456, **rec.to_dict()}
    return (len(json.dumps(line, separators=(",", ":"))) + 1) * (steps // every)


def describe_run(cfg, steps: int, args) -> str:
    text = f"gradtui run {cfg.name}: {model_summary(cfg)}; task {cfg.data.task}, {steps} steps, seed {cfg.train.seed}"
    if args.record:
        text += f"; recording every {args.every} step{'s' if args.every > 1 else ''} to {args.record}"
    return text + ". Ctrl-C stops cleanly."


def _wait_quiet(session) -> None:
    while not session.wait(POLL):
        snap = session.snapshot()
        if snap.record_error:
            return


def _state(snap) -> str:
    """The run state, and while the kernels compile, that the NumPy tier is training."""
    return f"{snap.status} on NumPy (kernels compiling)" if snap.tier == "reference" else snap.status


def _wait_with_progress(session, cfg, steps: int, console: Console) -> None:
    counts = len(f"{steps}/{steps}")
    progress = Progress(  # on a narrow terminal the bar and the alert give way; numbers are never cut
        TextColumn("{task.description:>9}", table_column=Column(no_wrap=True, min_width=9)),
        BarColumn(bar_width=None, table_column=Column(ratio=1, no_wrap=True, max_width=20)),
        MofNCompleteColumn(table_column=Column(no_wrap=True, min_width=counts)),
        TextColumn("{task.fields[rate]:>7} steps/s  loss {task.fields[loss]:>8}",
                   table_column=Column(no_wrap=True, min_width=31)),
        TextColumn("{task.fields[alert]}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
        console=console,
        transient=False,
        expand=True,
        refresh_per_second=10,
    )
    rate = "-"
    with progress:
        task = progress.add_task("compiling", total=steps, rate=rate, loss="-", alert="")
        while not session.wait(POLL):
            snap = session.snapshot()
            if snap.record_error:
                break
            loss = snap.latest.get("loss") if snap.latest else None
            if snap.steps_per_second:
                rate = f"{snap.steps_per_second:,.0f}"
            progress.update(task, completed=snap.step, description=_state(snap), rate=rate,
                            loss=_fmt(loss) if loss is not None else "-", alert=worst_alert(snap))
        snap = session.snapshot()
        loss = snap.latest.get("loss") if snap.latest else None
        progress.update(task, completed=snap.step, description=_state(snap), rate=rate,
                        loss=_fmt(loss) if loss is not None else "-", alert=worst_alert(snap))
