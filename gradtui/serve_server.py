"""The web server of `gradtui serve`: textual-serve's Server, with a session cap and guards.

textual-serve (aiohttp) serves a page whose script opens a websocket; for each websocket
it starts the app as a subprocess speaking Textual's web driver protocol on its stdin and
stdout, and relays keys, resizes, screen updates and file downloads. What this module adds:

- a cap: while ``max_sessions`` tabs run, the page is a plain "limit reached" page (503)
  and further websockets are refused;
- each tab's process is started without a shell, in a session of its own (Ctrl-C in the
  server's terminal reaches the server only), and ended when its tab closes: asked to
  quit, killed if it has not quit within ``QUIT_GRACE`` seconds; stopping the server ends
  every tab's process first, and on Linux a server killed outright takes them with it;
- a websocket whose page came from another site is refused (any web page could
  otherwise start gradtui through the port), and on a loopback bind only loopback host
  names are answered (DNS rebinding);
- the page's URLs follow the address the browser used, so ``ssh -L 9000:localhost:8000``
  works, and the server says where it listens only once it does.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import socket
import sys
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from textual_serve import download_manager
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from gradtui.serve import exposure_warning, is_loopback

WEB_DRIVER = "gradtui.ui.web_driver:WholePacketWebDriver"  # the driver each tab's gradtui runs

QUIT_GRACE = 5.0  # seconds a tab's process gets to quit before it is killed
# textual-serve gives a tab 4 s to hand over each 64 KB of a download, then breaks the download
# off; a tab training flat out on a busy machine can take longer than that to answer.
download_manager.DOWNLOAD_TIMEOUT = max(download_manager.DOWNLOAD_TIMEOUT, 30)
SHUTDOWN_GRACE = 3.0  # seconds left to the other requests (downloads) once every tab has ended
LIMIT_RETRY = 5  # seconds between the limit page's attempts to get a place
log = logging.getLogger("gradtui.serve")

# The page textual-serve renders asks Google for its font; the same font ships in its static
# folder, so the page is served with that instead: it works offline and tells nobody else.
GOOGLE_FONTS_LINK = re.compile(r'<link\s+rel="stylesheet"\s+href="https://fonts\.googleapis\.com/[^"]*"\s*/?>')
LOCAL_FONTS = """<style>
@font-face { font-family: "Roboto Mono"; font-style: normal; font-weight: 100 700;
  src: url("STATICfonts/RobotoMono-VariableFont_wght.ttf") format("truetype"); }
@font-face { font-family: "Roboto Mono"; font-style: italic; font-weight: 100 700;
  src: url("STATICfonts/RobotoMono-Italic-VariableFont_wght.ttf") format("truetype"); }
</style>"""

LIMIT_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="{retry}">
<title>gradtui: session limit reached</title></head>
<body style="background:#0c181f;color:#eee;font-family:monospace;padding:3em">
<h1>gradtui: session limit reached</h1>
<p>This server runs at most {limit} gradtui session{s} at once, and all of them are in use.</p>
<p>Close another gradtui tab, or wait for one to end: this page tries again every {retry} seconds.</p>
</body></html>
"""


def _linux_parent_death_signal():
    """A function for the child to call before exec (Linux): SIGTERM when the server dies, even by
    SIGKILL, so that no tab outlives it. prctl is looked up here, in the parent: the child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    set_parent_death_signal = 1  # PR_SET_PDEATHSIG, <linux/prctl.h>
    return lambda: prctl(set_parent_death_signal, int(signal.SIGTERM))


_END_WITH_SERVER = _linux_parent_death_signal()


class TabProcess(AppService):
    """One tab's gradtui process: started from an argument list, ended when the tab closes."""

    def __init__(self, argv: list[str], **kwargs) -> None:
        super().__init__(" ".join(argv), **kwargs)
        self.argv = argv
        self._stopping: asyncio.Future | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width=width, height=height)
        environment["TEXTUAL_DRIVER"] = WEB_DRIVER  # packets whole, even while a download goes out
        return environment

    async def _open_app_process(self, width: int = 80, height: int = 24):
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self._build_environment(width=width, height=height),
            start_new_session=True, preexec_fn=_END_WITH_SERVER)
        self._stdin = process.stdin
        return process

    async def run(self) -> None:
        await super().run()
        # The relay also stops early when the browser has gone; the process must still be able to
        # write (or it blocks on a full pipe and never reads the request to quit): read until it ends.
        while await self._process.stdout.read(1 << 16):
            pass
        await self.remote_close()  # the process ended (quit, or failed to start): the page says so

    async def stop(self) -> None:
        """Ask the process to quit; kill it after QUIT_GRACE seconds. Safe to call more than once."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        if self._process is None:
            self._stopping = None  # not started yet: a later stop() looks again
            return
        await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
        if self._process.returncode is None:
            await self.send_meta({"type": "quit"})
            if not await self._exited(QUIT_GRACE):
                log.warning("gradtui process %s did not quit within %.0f s; killing it", self._process.pid, QUIT_GRACE)
                self._process.kill()
                await self._exited(QUIT_GRACE)
        if self._task is not None:  # relaying the last output; never wait on a peer that is gone
            try:
                await asyncio.wait_for(self._task, QUIT_GRACE)
            except asyncio.TimeoutError:
                log.warning("tab of process %s: output relay did not end; cancelled", self._process.pid)
            self._task = None

    async def _exited(self, timeout: float) -> bool:
        """Wait until the process has exited. (Not ``process.wait()``: before Python 3.12 it also
        waits until the process's output has been read to the end.)"""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._process.returncode is None:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


class TabServer(Server):
    """textual-serve's Server running ``argv`` per tab, at most ``max_sessions`` at once."""

    def __init__(self, argv: list[str], host: str, port: int, max_sessions: int, loopback_only: bool) -> None:
        super().__init__(" ".join(argv), host=host, port=port, title="gradtui")
        self.argv = argv
        self.max_sessions = max_sessions
        self.loopback_only = loopback_only
        self.tabs: set[TabProcess] = set()
        self._stop_requested: asyncio.Event | None = None
        self.stopping = False

    # -- serving -------------------------------------------------------------------------------
    def run(self) -> None:
        """Serve until SIGINT, SIGTERM or SIGHUP; raises OSError when the address cannot be bound."""
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._stop_requested = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, self._stop_requested.set)
        runner = web.AppRunner(await self._make_app(), handle_signals=False, access_log=None,
                               shutdown_timeout=SHUTDOWN_GRACE)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            port = runner.addresses[0][1]
            if not self.loopback_only:
                print(exposure_warning(self.host, port), file=sys.stderr, flush=True)
            print(f"gradtui serve: http://{_url_host(self.host)}:{port}/", flush=True)
            print(f"each tab runs: gradtui {' '.join(self.argv[3:])} (at most {self.max_sessions} at once);"
                  " Ctrl+C stops the server and every tab's gradtui", flush=True)
            await self._stop_requested.wait()
        finally:
            self.stopping = True  # a tab still connecting gets no process
            open_tabs = list(self.tabs)
            await asyncio.gather(*(tab.stop() for tab in open_tabs))
            await runner.cleanup()
        print(f"gradtui serve: stopped; ended the gradtui of {len(open_tabs)} open tab(s)", flush=True)

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._host_guard)
        app.on_startup.clear()  # textual-serve prints its banner there, before the port is bound
        return app

    @web.middleware
    async def _host_guard(self, request: web.Request, handler):
        if self.loopback_only and not is_loopback(_host_name(request.host)):
            return web.Response(status=403, text=f"gradtui serve answers only to localhost, not to {request.host!r}\n")
        return await handler(request)

    # -- pages and tabs ------------------------------------------------------------------------
    def _full(self) -> bool:
        return len(self.tabs) >= self.max_sessions

    def _limit_response(self) -> web.Response:
        text = LIMIT_PAGE.format(limit=self.max_sessions, s="" if self.max_sessions == 1 else "s", retry=LIMIT_RETRY)
        return web.Response(status=503, text=text, content_type="text/html")

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        if self._full():
            return self._limit_response()
        base = f"{request.scheme}://{request.host}"
        websocket_scheme = "wss" if request.scheme == "https" else "ws"
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{websocket_scheme}://{request.host}/ws",
            "config": {"static": {"url": f"{base}/static/"}},
            "application": {"name": self.title},
        }
        page = aiohttp_jinja2.render_string("app_index.html", request, context)
        local_fonts = LOCAL_FONTS.replace("STATIC", context["config"]["static"]["url"])
        return web.Response(text=GOOGLE_FONTS_LINK.sub(local_fonts, page, count=1), content_type="text/html")

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            return web.Response(status=403, text=f"gradtui serve refuses a session opened by a page from {origin}\n")
        if self._full():
            return self._limit_response()
        websocket = web.WebSocketResponse(heartbeat=15)
        tab = TabProcess(self.argv, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                         close=websocket.close, download_manager=self.download_manager)
        self.tabs.add(tab)  # counted before the first await: two tabs cannot both take the last place
        try:
            await websocket.prepare(request)
            if self.stopping:
                return websocket
            await tab.start(to_int(request.query.get("width", "80"), 80), to_int(request.query.get("height", "24"), 24))
            await self._process_messages(websocket, tab)
        except Exception:  # a broken pipe or a malformed message: end this tab, keep serving the others
            log.exception("tab ended on an error")
        finally:
            await tab.stop()
            self.tabs.discard(tab)
            await websocket.close()
        return websocket


def _host_name(host_header: str) -> str:
    """'localhost:8000' -> 'localhost', '[::1]:8000' -> '::1'."""
    return urlsplit(f"//{host_header}").hostname or ""


def _url_host(host: str) -> str:
    """The host part of the URL to print: this machine's name for an all-interfaces bind."""
    if host in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host
