"""`gradtui serve`: the interface in a browser tab, one gradtui process per tab.

This module holds the command's options, its checks and its messages; it imports
textual-serve (an optional extra) only when the command runs, through
:mod:`gradtui.serve_server`, which does the serving.

Each tab runs the command line a terminal would (``gradtui PRESET``, ``gradtui watch
RUN.jsonl``), started with the Python that runs the server. Safety: the server binds to
127.0.0.1 unless ``--host`` names another interface (then a warning: anyone who can
reach the port can run gradtui as this user); at most ``--max-sessions`` tabs run at
once; a tab that closes ends its process.
"""

from __future__ import annotations

import argparse
import errno
import getpass
import ipaddress
import socket
import sys
import textwrap

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_SESSIONS = 4  # each tab trains flat out on a core of its own
DEFAULT_FPS = 10  # the interface's own default
INSTALL_HINT = 'pip install "gradtui[serve]"'

DESCRIPTION = (
    "Serve the interface to web browsers (textual-serve): each browser tab gets its own gradtui "
    "process running `gradtui PRESET_OR_PATH` (or `gradtui watch RUN.jsonl` with --watch). Binds to "
    "127.0.0.1 by default; to reach a remote machine, forward the port: ssh -L 8000:localhost:8000 HOST."
)


def add_serve_parser(sub, add_config_args, positive_int, epilog: str) -> None:
    """Declare `gradtui serve` on the subcommand parsers (argparse only: nothing is imported)."""
    serve = sub.add_parser("serve", help="serve the interface to web browsers", description=textwrap.fill(DESCRIPTION, 100),
                           formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    add_config_args(serve, positional_optional=True)
    serve.add_argument("--watch", default=None, metavar="RUN.jsonl",
                       help="serve the record viewer on a record another process writes (gradtui watch)")
    serve.add_argument("--host", default=DEFAULT_HOST,
                       help=f"address to listen on (default {DEFAULT_HOST}: this machine only)")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT,
                       help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)")
    serve.add_argument("--max-sessions", type=positive_int, default=DEFAULT_MAX_SESSIONS, metavar="N",
                       help=f"tabs that may run at once, one process each (default {DEFAULT_MAX_SESSIONS})")
    serve.add_argument("--fps", type=positive_int, default=DEFAULT_FPS, metavar="N",
                       help=f"screen refreshes per second in each tab (default {DEFAULT_FPS})")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 65535")
    return value


def tab_command(args) -> list[str]:
    """The command line each tab runs: what a terminal would type, with this Python."""
    command = [sys.executable, "-m", "gradtui"]
    if args.watch is not None:
        command += ["watch", args.watch]
    else:
        command += [] if args.preset is None else [args.preset]
        for assignment in args.sets:
            command += ["--set", assignment]
    return command + ([] if args.fps == DEFAULT_FPS else ["--fps", str(args.fps)])


def is_loopback(host: str) -> bool:
    """True when ``host`` can only be reached from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, port: int) -> str:
    return (f"gradtui: warning: serving on {host}, not on this machine's loopback: anyone who can reach "
            f"port {port} there can run gradtui as user {getpass.getuser()} (and write its exports into "
            f"this folder). The safe way to reach a remote machine is the default --host {DEFAULT_HOST} "
            f"and a forwarded port: ssh -L {port}:localhost:{port} HOST")


def serve_command(args) -> int:
    """Run `gradtui serve` until Ctrl-C; return the exit status (2: bad input, port taken, extra missing)."""
    from gradtui.cli import SUBCOMMANDS, fail, resolve_config
    from gradtui.config import ConfigError

    if args.watch is not None and (args.preset is not None or args.sets):
        return fail("--watch RUN.jsonl serves the record viewer; give either it or a preset (with --set), not both")
    if args.watch is not None and "watch" not in SUBCOMMANDS:
        return fail("--watch needs the record viewer (gradtui watch), which this version of gradtui does not have")
    if args.watch is None:
        try:
            resolve_config(args.preset, args.sets)  # each tab would fail the same way: say it once, now
        except ConfigError as err:
            return fail(str(err))
    try:
        from gradtui.serve_server import TabServer
    except ImportError as err:
        return fail(f"gradtui serve needs textual-serve, which is not installed ({err}); install it with: {INSTALL_HINT}")

    server = TabServer(tab_command(args), host=args.host, port=args.port, max_sessions=args.max_sessions,
                       loopback_only=is_loopback(args.host))
    try:
        server.run()
    except OSError as err:
        return fail(_bind_error(err, args.host, args.port))
    return 0


def _bind_error(err: OSError, host: str, port: int) -> str:
    if err.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is already in use; choose another with --port (0 picks a free one)"
    if err.errno == errno.EADDRNOTAVAIL or isinstance(err, socket.gaierror):
        return f"cannot listen on {host!r}: not an address of this machine ({err.strerror or err}); the default is {DEFAULT_HOST}"
    if err.errno == errno.EACCES:
        return f"not allowed to listen on port {port} (ports below 1024 need privileges); choose another with --port"
    return f"cannot listen on {host} port {port}: {err.strerror or err}"
