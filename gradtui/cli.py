"""The command line: `gradtui` (interactive), `gradtui run` (headless), `gradtui replay` and `gradtui watch`
(the interface on a record), `gradtui presets`, `gradtui check`, `gradtui sweep` (a grid of runs on Dask:
gradtui.sweep.command), `gradtui serve` (browser tabs: gradtui.serve).

Exit status: 0 done, 1 training stopped on a problem (non-finite values, a failed
record write, an internal error), 2 bad input (unknown preset or key, bad value,
malformed TOML, unwritable or busy record, a config too large for the memory),
130 interrupted with Ctrl-C, 143 ended by SIGTERM.

Every expected failure becomes one line on stderr and its exit status in one place,
:func:`main`; everything else (NumPy, Numba, rich, the engine) is imported inside it,
so even a Ctrl-C while those load ends with a line, not a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

SUBCOMMANDS = ("run", "replay", "watch", "presets", "check", "serve")

EPILOG = """\
commands:
  gradtui [PRESET_OR_PATH]        the interactive interface (default preset: vanishing-sigmoid)
  gradtui run PRESET_OR_PATH      train headless with a progress bar and a summary (see gradtui run -h)
  gradtui replay RUN.jsonl        the interface on a finished record: play, pause, step, seek
  gradtui watch RUN.jsonl         follow a record another process is writing (like tail -f)
  gradtui presets                 list the shipped presets
  gradtui check PRESET_OR_PATH    validate a preset or TOML file and print the resolved config
  gradtui sweep PRESET_OR_PATH    train a grid of configs on Dask and draw a heatmap (see gradtui sweep -h)
  gradtui serve [PRESET_OR_PATH]  the interface in web browser tabs, one process per tab (see gradtui serve -h)

A PRESET_OR_PATH may also be a record (RUN.jsonl): its header's config, so
`gradtui run RUN.jsonl` trains the recorded run again (same seed, same losses).

examples:
  gradtui run vanishing-sigmoid --steps 500
  gradtui run vanishing-sigmoid --set model.activation=relu --set model.init=he
  gradtui run my.toml --record run.jsonl --every 10
  gradtui run vanishing-sigmoid --record run.jsonl   # in one terminal
  gradtui watch run.jsonl                            # in another (or over SSH)
  gradtui replay run.jsonl

exit status: 0 done, 1 training stopped on a problem, 2 bad input, 130 interrupted (Ctrl-C), 143 SIGTERM
"""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that the same clean stop follows."""

    status = 143


def _on_sigterm(signum, frame):
    raise Terminated()


def interrupt_status(err: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM."""
    return getattr(err, "status", 130)


class _Parser(argparse.ArgumentParser):
    """argparse with gradtui's one-line error format (exit 2, no traceback)."""

    def error(self, message):  # pragma: no cover - exercised through subprocess tests
        self.print_usage(sys.stderr)
        self.exit(2, f"gradtui: error: {message}\n")


def _add_config_args(p: argparse.ArgumentParser, positional_optional: bool = False) -> None:
    kw = dict(nargs="?", default=None) if positional_optional else {}
    p.add_argument("preset", metavar="PRESET_OR_PATH", help="a shipped preset name (see `gradtui presets`), a path to a .toml "
                   "file, or a record (.jsonl) whose header holds the config", **kw)
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set model.depth=30 (repeatable; keys as in `gradtui check`)")


def build_parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    from gradtui import __version__

    ui = _Parser(prog="gradtui", description="See vanishing and exploding gradients live in the terminal, and fix them with one key.",
                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_config_args(ui, positional_optional=True)
    ui.add_argument("--fps", type=_positive_int, default=10, metavar="N", help="screen refreshes per second (default 10)")
    ui.add_argument("--version", action="version", version=f"gradtui {__version__}")

    top = _Parser(prog="gradtui", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="train headless", description=_wrap(
        "Train headless: a progress bar with steps/s, loss and the worst active alert, then a per-layer "
        "summary and the alerts raised. Ctrl-C or SIGTERM stops cleanly (the record is closed, exit status "
        "130 or 143)."),
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    _add_config_args(run)
    run.add_argument("--steps", type=_positive_int, default=None, metavar="N", help="steps to train (default: the config's train.steps)")
    run.add_argument("--seed", type=_nonneg_int, default=None, metavar="S", help="seed of initialisation and batch order (train.seed)")
    run.add_argument("--record", default=None, metavar="FILE.jsonl", help="write a JSON Lines record: a header, every K-th step, and events")
    run.add_argument("--force", action="store_true", help="overwrite an existing record file")
    run.add_argument("--every", type=_positive_int, default=1, metavar="K", help="record every K-th step (default 1)")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no table: one line at the end")
    sub.add_parser("presets", help="list the shipped presets", description="List the shipped presets with their one-line descriptions.")
    check = sub.add_parser("check", help="validate a config and print it", description=_wrap(
        "Validate a preset or TOML file (with any --set overrides) and print the resolved config; "
        "exit status 2 when it is not valid."), formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_config_args(check)
    replay = sub.add_parser("replay", help="the interface on a finished record", description=_wrap(
        "Play a JSON Lines record back in the interface: the bars, weights, loss, alerts and markers as they looked "
        "live. Keys: space play/pause, left/right one step, [ ] or < > slower/faster, home/end. Keys that would change "
        "the model are unavailable (`gradtui run RUN.jsonl` trains the run again)."),
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    _add_record_args(replay, "a record written by `gradtui run --record`, the interface's export, or another program")
    replay.add_argument("--paused", action="store_true", help="start paused at the first step")
    watch = sub.add_parser("watch", help="follow a record another process is writing", description=_wrap(
        "Follow a JSON Lines record while another process writes it, like tail -f: new steps appear as they are "
        "flushed; a file that does not exist yet is waited for; a truncated or rewritten file, or a new run in it, "
        "is followed from its start. Ctrl-C or q quits."),
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    _add_record_args(watch, "the record being written (waited for when it does not exist yet)")
    from gradtui.serve import add_serve_parser  # argparse only: textual-serve loads when serving

    add_serve_parser(sub, _add_config_args, _positive_int, EPILOG)
    return ui, top


def _add_record_args(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("record", metavar="RUN.jsonl", help=what)
    p.add_argument("--fps", type=_positive_int, default=10, metavar="N", help="screen refreshes per second (default 10)")


def _wrap(text: str) -> str:
    import shutil
    import textwrap

    return textwrap.fill(text, width=min(100, shutil.get_terminal_size((80, 24)).columns - 2))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and {2**31 - 1}")
    return value


def resolve_config(preset, sets, seed=None):
    """load_config + --set overrides (+ --seed), refused when it cannot fit in memory; raises ConfigError."""
    from gradtui.config import DEFAULT_PRESET, load_config, parse_assignments
    from gradtui.engine.memory import check_fits

    cfg = load_config(preset or DEFAULT_PRESET)
    overrides = parse_assignments(sets or [])
    if seed is not None:
        overrides["train.seed"] = seed
    cfg = cfg.with_overrides(overrides) if overrides else cfg
    check_fits(cfg)
    return cfg


def fail(message: str, status: int = 2) -> int:
    print(f"gradtui: error: {message}", file=sys.stderr)
    return status


def _describe_os_error(err: OSError) -> str:
    from gradtui.config.loader import shown

    where = f"{shown(os.fsdecode(err.filename))}: " if err.filename else ""
    return where + (err.strerror or str(err))


def main(argv: list[str] | None = None) -> int:
    """The command line. Every expected failure ends here as one line and its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # called from another thread than the main one: signals stay as they are
        previous = None
    try:
        return _main(argv)
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM outside a run (a run handles its own)
        print("gradtui: terminated" if isinstance(err, Terminated) else "gradtui: interrupted", file=sys.stderr)
        return interrupt_status(err)
    except BrokenPipeError:  # `gradtui presets | head -1`: the reader has all it wanted
        _silence_stdout()
        return 0
    except RecursionError:
        return fail("the input is nested too deeply to read")
    except OverflowError as err:
        return fail(f"a number is too large: {err}")
    except OSError as err:  # a name too long, a directory that cannot be read ...
        return fail(_describe_os_error(err))
    except Exception as err:  # noqa: BLE001
        from gradtui.config import ConfigError

        if isinstance(err, ConfigError):
            return fail(str(err))
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _main(argv: list[str]) -> int:
    if argv and argv[0] == "sweep":  # its own parser; Dask is imported only here
        from gradtui.sweep.command import main as sweep_main

        return sweep_main(argv[1:])
    ui, top = build_parsers()
    if argv and argv[0] in SUBCOMMANDS:
        args = top.parse_args(argv)
    else:
        if argv and argv[0] == "help":
            ui.print_help()
            return 0
        args = ui.parse_args(argv)
        args.command = None
    if args.command == "presets":
        from gradtui.cli_output import print_presets

        return print_presets()
    if args.command in ("replay", "watch"):
        return _run_record_ui(args)
    if args.command == "check":
        cfg = resolve_config(args.preset, args.sets)
        from gradtui.cli_output import print_check

        return print_check(cfg)
    if args.command == "run":
        cfg = resolve_config(args.preset, args.sets, args.seed)
        from gradtui.cli_run import run_headless

        return run_headless(cfg, args)
    if args.command == "serve":
        from gradtui.serve import serve_command

        return serve_command(args)
    cfg = resolve_config(args.preset, args.sets)
    return _run_ui(cfg, args.fps)


def _run_record_ui(args) -> int:
    """`gradtui replay` and `gradtui watch`: the interface on a record."""
    from pathlib import Path

    from gradtui.config.loader import shown
    from gradtui.record import RecordError

    path = Path(args.record).expanduser()
    if path.is_dir():
        return fail(f"{shown(str(path))} is a directory; give a record file (RUN.jsonl)")
    if args.command == "replay":
        from gradtui.sources.replay import ReplaySource

        if not path.is_file():
            return fail(f"no record at {shown(str(path))} (to follow a record that is still to be written, use `gradtui watch`)")
        try:
            source = ReplaySource(path, start_paused=args.paused)
        except RecordError as err:
            return fail(str(err))
        for problem in source.record.problems:
            print(f"gradtui: note: {problem}", file=sys.stderr)
        name = f"replay {path.name}"
    else:
        from gradtui.sources.follow import FollowSource

        source, name = FollowSource(path), f"watch {path.name}"
    from gradtui.ui import run_app

    return run_app(None, fps=args.fps, source=source, name=name) or 0


def _run_ui(cfg, fps: int) -> int:
    from gradtui.engine.kernel_cache import kernel_cache_dir
    from gradtui.ui import run_app  # imported here: the headless commands never load Textual

    kernel_cache_dir()  # its notice, if any, before the screen takes over
    return run_app(cfg, fps=fps) or 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
