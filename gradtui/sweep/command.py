"""`gradtui sweep`: train a grid of configs on Dask and draw the outcome as a heatmap.

Exit status: 0 every cell finished (failed or non-finite cells are results), 2 bad input
(unknown key, empty range, a grid above MAX_CELLS without --yes, another sweep in --out,
an unreachable scheduler), 130 Ctrl-C (finished cells are kept; the same command resumes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gradtui.sweep.grid import MAX_CELLS, SIGMA_W2
from gradtui.sweep.plan import PHASE_DIAGRAMS

EXAMPLES = f"""\
grid specs (KEY is any config key, or {SIGMA_W2} = fan_in * Var(W), which sets model.init_gain):
  --grid model.depth=10,20,40        a list
  --grid model.depth=10:100:10       a linear range, start:stop:step (stop included)
  --grid train.lr=0.001:1:x10        a geometric range, start:stop:xFACTOR
  the first --grid is the heatmap's y axis, the second its x axis; at most two keys.

examples:
  gradtui sweep --phase-diagram tanh                      # the trainability map of Schoenholz et al. 2017
  gradtui sweep vanishing-tanh-standard --grid model.depth=5:30:5 --grid {SIGMA_W2}=1:3:0.5 --steps 300 --seeds 2 --out sweeps/tanh
  gradtui sweep ... --scheduler tcp://HOST:8786          # an existing cluster (`dask scheduler`, `dask worker`)

results in --out: results.csv (one row per cell), manifest.json, heatmap.svg (and heatmap.png).
exit status: 0 done, 2 bad input or unreachable scheduler, 130 interrupted (finished cells kept; rerun to resume)
"""


def build_parser() -> argparse.ArgumentParser:
    from gradtui.cli import _add_config_args, _Parser, _positive_int

    p = _Parser(prog="gradtui sweep", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
                description="Train every cell of a grid of configs on Dask (a local cluster, or --scheduler) and "
                            "draw the chosen outcome as a heatmap with mean-field theory overlaid.")
    _add_config_args(p, positional_optional=True)
    p.add_argument("--grid", action="append", default=[], metavar="KEY=SPEC", help="a swept key and its values (repeatable)")
    p.add_argument("--phase-diagram", choices=sorted(PHASE_DIAGRAMS), default=None,
                   help="the named trainability map: depth x sigma_w2 at sigma_b2 = 0.05 (--grid and --set refine it)")
    p.add_argument("--steps", type=_positive_int, default=None, metavar="N", help="steps per cell (default: train.steps)")
    p.add_argument("--seeds", type=_positive_int, default=1, metavar="N", help="seeds per grid point, train.seed, +1, ... (default 1)")
    p.add_argument("--out", default=None, metavar="DIR", help="results directory (default sweeps/NAME); the same DIR resumes")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT", help="an existing Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=_positive_int, default=None, metavar="N", help="local cluster size (default: one per core)")
    p.add_argument("--show", default=None, metavar="OUTCOME", help="the heatmap's outcome (default accuracy, or final_loss for regression)")
    p.add_argument("--threshold", type=float, default=None, metavar="F",
                   help="trained = held-out loss <= F x the constant prediction's loss (default 0.5)")
    p.add_argument("--records", action="store_true", help="write each cell's JSON Lines record to DIR/records/")
    p.add_argument("--yes", action="store_true", help=f"run a grid of more than {MAX_CELLS} cells")
    return p


def fail(message: str) -> int:
    print(f"gradtui: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    from gradtui.config import ConfigError, load_config, parse_assignments
    from gradtui.sweep.cell import DEFAULT_THRESHOLD
    from gradtui.sweep.plan import make_plan, phase_diagram_base

    args = build_parser().parse_args(argv)
    try:
        if args.phase_diagram:
            if args.preset:
                return fail(f"--phase-diagram {args.phase_diagram} sets its own network; leave out {args.preset!r} (use --set to change it)")
            base = phase_diagram_base(args.phase_diagram, load_config)
        elif not args.preset:
            return fail("give a preset or a .toml file to sweep (see `gradtui presets`), or --phase-diagram tanh")
        else:
            base = load_config(args.preset)
        if args.sets:
            base = base.with_overrides(parse_assignments(args.sets))
        plan = make_plan(base, args.grid, args.seeds, args.steps,
                         DEFAULT_THRESHOLD if args.threshold is None else args.threshold, args.show, args.phase_diagram)
    except ConfigError as err:
        return fail(str(err))
    if len(plan.cells) > MAX_CELLS and not args.yes:
        sizes = " x ".join(f"{len(a.values)} {a.key}" for a in plan.axes)
        return fail(f"the grid has {len(plan.cells):,} cells ({sizes} x {len(plan.seeds)} seed{'s' if len(plan.seeds) > 1 else ''}); "
                    f"more than {MAX_CELLS} needs --yes")
    name = f"phase-diagram-{args.phase_diagram}" if args.phase_diagram else plan.base.name
    out_dir = Path(args.out or Path("sweeps") / name)
    return _run(plan, out_dir, args)


def _run(plan, out_dir: Path, args) -> int:
    from rich.console import Console
    from rich.live import Live

    from gradtui.sweep import manifest, runner, svg
    from gradtui.sweep.live import SweepView
    from gradtui.sweep.table import ResultsTable

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return fail(f"cannot create --out {out_dir}: {err.strerror or err}")
    try:
        finished = ResultsTable(out_dir, plan.axis_keys).finished()
        manifest.load_or_create(out_dir, plan, args.scheduler or "local")
    except (ValueError, OSError) as err:
        return fail(str(err))
    console = Console(stderr=True, highlight=False)
    if all(c.ident(plan.axes) in finished for c in plan.cells):
        client, where = None, "no cluster (every cell is in the table already)"
    else:
        try:
            client, where = runner.connect(args.scheduler, args.workers)
        except runner.SweepError as err:
            return fail(str(err))
    print(f"gradtui sweep: {len(plan.cells)} cells of {plan.steps} steps on {where}; results in {out_dir}. "
          "Ctrl-C stops; the same command resumes.", file=sys.stderr)
    views = {}

    def view_factory(hm, progress):
        overlay = runner.theory_overlay(plan, hm)
        views["view"] = SweepView(hm, plan.title, progress, overlay)
        return views["view"]

    interrupted = False
    result = None
    try:
        with Live(console=console, refresh_per_second=4, transient=False, auto_refresh=False) as live:
            result = runner.run(plan, out_dir, client, view_factory, records=args.records, live=live)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if client is not None:
            runner.close(client)
    if not console.is_terminal:
        console.print()
    view = views.get("view")
    if view is not None and (result is not None or interrupted):
        files = svg.write(view.hm, out_dir / "heatmap.svg", plan.title, view.overlay)
    else:
        files = []
    if interrupted:
        known = {c.ident(plan.axes) for c in plan.cells}
        done = len(known & set(ResultsTable(out_dir, plan.axis_keys).finished()))  # the table is the truth
        print(f"gradtui: interrupted: {done} of {len(plan.cells)} cells finished and kept in "
              f"{out_dir / 'results.csv'}; run the same command to do the rest", file=sys.stderr)
        return 130
    progress = result["progress"]
    print(f"{progress.done}/{progress.total} cells ({result['skipped']} from an earlier run), "
          f"{progress.failed} failed or non-finite; {runner.summary(plan, result['hm'])}.")
    print(f"table {out_dir / 'results.csv'}, manifest {out_dir / 'manifest.json'}, " + ", ".join(f"plot {f}" for f in files))
    return 0
