"""The Textual driver a `gradtui serve` tab runs: Textual's web driver, each packet written whole and alone.

The web driver speaks to the server through one pipe, in packets ``type + 4-byte length +
payload``. Textual writes screen updates from the app's thread and a download's 64 KB chunks
from its input thread, each with one bare ``os.write``. A write larger than the pipe's
atomic size (4 KB) that has to wait for the reader lets the other thread's bytes in between,
and ``os.write`` may write only part of its bytes; either way the server then reads a
payload as a length (often gigabytes) and waits for it forever: the tab's screen freezes
and the download never arrives. Here every packet goes out under one lock, to its last byte.
"""

from __future__ import annotations

import os
import threading

from textual.drivers.web_driver import WebDriver


class WholePacketWebDriver(WebDriver):
    """Textual's WebDriver whose packets never interleave and are never cut short."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._write_lock = threading.Lock()
        self._write = self._write_whole  # every packet (screen, meta, download chunk) goes through _write

    def _write_whole(self, data: bytes) -> None:
        rest = memoryview(data)
        with self._write_lock:
            while rest:
                rest = rest[os.write(self.fileno, rest):]
