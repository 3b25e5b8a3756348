"""Helpers for the `gradtui serve` tests: a real server in a subprocess, its tabs' processes, a real browser.

The browser is Debian's Chromium (never a downloaded one) driven by Playwright. The page's
terminal (xterm.js in textual-serve's client) draws on a canvas, so the text on screen is read
from xterm's own buffer: the test hands the page textual-serve's script with one assignment
added that exposes the terminal object (``window.gradtuiTerminal``); nothing else changes.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
APP_START = 120  # seconds for a tab's gradtui to draw its bars (Numba may compile on a cold cache)
TERMINAL_ANCHOR = "this.terminal.open(e),"
URL_LINE = re.compile(r"gradtui serve: (http://\S+)")


class Served:
    """A running `gradtui serve` subprocess (its output goes to files in its working folder)."""

    def __init__(self, process: subprocess.Popen, folder: Path) -> None:
        self.process = process
        self.folder = folder
        self.url = ""

    @property
    def port(self) -> int:
        return int(self.url.rstrip("/").rsplit(":", 1)[1])

    def stdout(self) -> str:
        return (self.folder / "serve.out").read_text()

    def stderr(self) -> str:
        return (self.folder / "serve.err").read_text()

    def tab_pids(self) -> list[int]:
        """The server's live child processes (one per tab)."""
        return child_pids(self.process.pid)

    def wait_for_tabs(self, count: int, timeout: float = 15) -> list[int]:
        end = time.monotonic() + timeout
        while len(pids := self.tab_pids()) != count:
            if time.monotonic() > end:
                raise AssertionError(f"expected {count} tab processes, found {pids}\n{self.stderr()[-2000:]}")
            time.sleep(0.1)
        return pids

    def stop(self, timeout: float = 30) -> int:
        """Ctrl-C, as a user would; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: every thread's stack to stderr
            self.process.wait(10)
            raise AssertionError(f"gradtui serve did not stop on Ctrl-C within {timeout} s:\n"
                                 f"{self.stdout()[-3000:]}\n{self.stderr()[-6000:]}") from None


def serve_process(folder: Path, *args: str) -> subprocess.Popen:
    """Start `python -m gradtui serve ARGS` in ``folder`` (no waiting)."""
    return subprocess.Popen([sys.executable, "-m", "gradtui", "serve", *args], cwd=folder,
                            env=dict(os.environ, PYTHONFAULTHANDLER="1"),
                            stdout=(folder / "serve.out").open("w"), stderr=(folder / "serve.err").open("w"))


@contextmanager
def served(folder: Path, *args: str, timeout: float = 30):
    """`gradtui serve --port 0 ARGS` running in ``folder`` until the block ends; yields a Served."""
    server = Served(serve_process(folder, "--port", "0", *args), folder)
    try:
        end = time.monotonic() + timeout
        while not (found := URL_LINE.search(server.stdout())):
            if server.process.poll() is not None or time.monotonic() > end:
                raise AssertionError(f"gradtui serve did not start:\n{server.stdout()}\n{server.stderr()}")
            time.sleep(0.05)
        server.url = found.group(1)
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


def child_pids(parent: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``parent``, from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state_and_parent = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(state_and_parent[1]) == parent and state_and_parent[0] != "Z":
            pids.append(int(stat.parent.name))
    return sorted(pids)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# -- the browser side ----------------------------------------------------------------------------
SCREEN_JS = """() => {
  const t = window.gradtuiTerminal;
  if (!t) return "";
  const b = t.buffer.active, rows = [];
  for (let i = 0; i < t.rows; i++) { const line = b.getLine(b.viewportY + i); rows.push(line ? line.translateToString(true) : ""); }
  return rows.join("\\n");
}"""

PIXELS_JS = """async (png) => {
  const img = new Image();
  img.src = "data:image/png;base64," + png;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.width; canvas.height = img.height;
  const g = canvas.getContext("2d");
  g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, img.width, img.height).data;
  let sum = 0, squares = 0;
  const colours = new Set();
  for (let i = 0; i < d.length; i += 4) {
    const v = (d[i] + d[i + 1] + d[i + 2]) / 3;
    sum += v; squares += v * v;
    colours.add((d[i] >> 4) * 256 + (d[i + 1] >> 4) * 16 + (d[i + 2] >> 4));
  }
  const n = d.length / 4, mean = sum / n;
  return {std: Math.sqrt(Math.max(0, squares / n - mean * mean)), colours: colours.size, width: img.width};
}"""


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_tab(context, url: str, expect_app: bool = True):
    """A new tab on ``url``; with ``expect_app``, wait until gradtui has drawn its gradient bars."""
    page = context.new_page()
    page.requested = []  # every URL the page asked for
    page.on("request", lambda request: page.requested.append(request.url))

    def expose_terminal(route):
        response = route.fetch()
        script = response.text()
        assert script.count(TERMINAL_ANCHOR) == 1, "textual-serve's client changed: update TERMINAL_ANCHOR"
        route.fulfill(response=response,
                      body=script.replace(TERMINAL_ANCHOR, TERMINAL_ANCHOR + "window.gradtuiTerminal=this.terminal,"))

    page.route("**/static/js/textual.js", expose_terminal)
    page.response = page.goto(url)
    if expect_app:
        wait_for_screen(page, r"hidden\.0", APP_START)
        # keys go to the terminal, as after a click (without scrolling the page to the hidden textarea)
        page.evaluate("() => document.querySelector('.xterm-helper-textarea').focus({preventScroll: true})")
    return page


def screen_text(page) -> str:
    """The terminal's rows; empty while the page (re)loads."""
    from playwright.sync_api import Error

    try:
        return page.evaluate(SCREEN_JS)
    except Error as err:
        if "navigation" in str(err) or "context was destroyed" in str(err):
            return ""
        raise


def wait_for_screen(page, pattern: str, timeout: float = 60) -> re.Match:
    end = time.monotonic() + timeout
    while not (found := re.search(pattern, text := screen_text(page))):
        if time.monotonic() > end:
            raise AssertionError(f"{pattern!r} not on the screen within {timeout} s:\n{text}")
        page.wait_for_timeout(100)
    return found


def wait_until_gone(page, text: str, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while text in screen_text(page):
        if time.monotonic() > end:
            raise AssertionError(f"{text!r} still on the screen after {timeout} s")
        page.wait_for_timeout(100)


def pixel_spread(page, png: bytes) -> dict:
    """Standard deviation of the grey level and number of distinct colours (4 bits a channel) of a PNG."""
    return page.evaluate(PIXELS_JS, base64.b64encode(png).decode())
