"""`gradtui run`: a Session driven headless, with a rich progress bar and a summary at the end."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from gradtui.cli_output import _fmt, print_summary, theory_line, worst_alert
from gradtui.config.summary import model_summary
from gradtui.record import RecordError

POLL = 0.1  # seconds between progress updates


def run_headless(cfg, args) -> int:
    from gradtui.session import Session

    steps = args.steps or cfg.train.steps
    try:
        session = Session(cfg, record_path=args.record, every=args.every, force=args.force, max_steps=steps,
                          tier="auto")
    except RecordError as err:
        print(f"gradtui: error: {err}", file=sys.stderr)
        return 2
    out = Console(highlight=False)
    err_console = Console(stderr=True, highlight=False)
    t0 = time.perf_counter()
    interrupted = False
    if not args.quiet:
        err_console.print(describe_run(cfg, steps, args))
        err_console.print(theory_line(cfg), style="dim")
    try:
        session.start()
        if args.quiet:
            _wait_quiet(session)
        else:
            _wait_with_progress(session, cfg, steps, err_console)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        ended = session.stop(timeout=2.0)
    snap = session.snapshot()
    elapsed = time.perf_counter() - t0
    status = 0
    problem = ""
    if interrupted:
        status, problem = 130, f"interrupted at step {snap.step}; the record is closed" if args.record else f"interrupted at step {snap.step}"
    elif snap.record_error:
        status, problem = 1, snap.record_error
    elif snap.pause_reason == "nonfinite":
        where = snap.latest.get("nonfinite_layer") or "the network"
        status, problem = 1, (f"training stopped at step {snap.step}: non-finite values (NaN or Inf) appeared in {where}, "
                              "so that update was not applied; try one of the fixes listed above")
    elif snap.status == "error":
        status, problem = 1, snap.message
        print(session.error_traceback, file=sys.stderr)  # an internal error: the traceback helps a bug report
    if not ended:
        problem = (problem + "; " if problem else "") + "the last step was still running when gradtui exited"
    if args.quiet:
        loss = snap.latest.get("loss") if snap.latest else None
        alerts = ", ".join(f"{a.kind}" for _, a in snap.raised) or "none"
        out.print(f"{snap.step} steps in {elapsed:.1f} s, loss {_fmt(loss)}, alerts raised: {alerts}"
                  + (f", record {args.record}" if args.record else ""))
    else:
        plural = "" if snap.step == 1 else "s"
        out.print(f"{'Interrupted after' if interrupted else 'Trained'} {snap.step} step{plural} in {elapsed:.1f} s.")
        print_summary(snap, out, interrupted=interrupted, record=None if snap.record_error else args.record)
    if problem:
        print(f"gradtui: {problem}", file=sys.stderr)
    return status


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
    progress = Progress(
        TextColumn("{task.description:>9}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>7} steps/s  loss {task.fields[loss]:>8}  {task.fields[alert]}"),
        console=console,
        transient=False,
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
