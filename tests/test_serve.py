"""`gradtui serve` without a browser: where it listens, what it refuses, its messages and exit status."""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.serving import alive, serve_process, served


def non_loopback_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (`hostname -I`)."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return [address for address in out if "." in address and not address.startswith("127.")]


def connects(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError:
        return False
    return True


def get(host: str, port: int, path: str = "/", headers: dict | None = None) -> tuple[int, str]:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    return response.status, body


def test_the_default_bind_is_loopback_only(tmp_path):
    with served(tmp_path) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/"
        status, page = get("127.0.0.1", server.port)
        assert status == 200 and f"ws://127.0.0.1:{server.port}/ws" in page
        assert not connects("127.0.0.2", server.port)
        for address in non_loopback_addresses():
            assert not connects(address, server.port), address
        assert "warning" not in server.stderr()


def test_pages_for_other_host_names_and_sessions_opened_by_other_sites_are_refused(tmp_path):
    with served(tmp_path) as server:
        # DNS rebinding: a site whose name resolves to 127.0.0.1 reaches the port under its own name
        status, body = get("127.0.0.1", server.port, headers={"Host": f"attacker.example:{server.port}"})
        assert status == 403 and "only to localhost" in body
        # any page the user visits may open a websocket to localhost: its Origin gives it away
        upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": "http://attacker.example"}
        status, body = get("127.0.0.1", server.port, "/ws", headers=upgrade)
        assert status == 403 and "http://attacker.example" in body
        assert server.tab_pids() == []


def test_another_interface_needs_an_explicit_host_and_prints_a_warning(tmp_path):
    host = (non_loopback_addresses() or ["0.0.0.0"])[0]
    with served(tmp_path, "--host", host) as server:
        warning = server.stderr()
        assert "warning" in warning and f"anyone who can reach port {server.port}" in warning
        assert "ssh -L" in warning
        if host != "0.0.0.0":
            assert server.url == f"http://{host}:{server.port}/"
        status, page = get(host if host != "0.0.0.0" else "127.0.0.1", server.port)
        assert status == 200 and "textual-terminal" in page  # any host name is answered there


def test_a_port_in_use_is_a_clear_error_exit_2(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = serve_process(tmp_path, "--port", str(port))
        assert process.wait(30) == 2
    err = (tmp_path / "serve.err").read_text()
    assert f"port {port} on 127.0.0.1 is already in use" in err and "--port" in err
    assert "Traceback" not in err
    assert "http://" not in (tmp_path / "serve.out").read_text()  # no URL for a server that is not there


def test_missing_textual_serve_is_a_clear_error_exit_2():
    hide = "import sys; sys.modules['textual_serve'] = None; from gradtui.cli import main; sys.exit(main(['serve']))"
    out = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert 'pip install "gradtui[serve]"' in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("args, message", [
    (["no-such-preset"], "no-such-preset"),
    (["--set", "model.depth=-3"], "model.depth"),
    (["vanishing-sigmoid", "--watch", "run.jsonl"], "either"),
    (["--port", "70000"], "between 0 and 65535"),
    (["--max-sessions", "0"], "at least 1"),
])
def test_bad_input_exits_2_before_serving(args, message, tmp_path):
    process = serve_process(tmp_path, *args)
    assert process.wait(60) == 2
    err = (tmp_path / "serve.err").read_text()
    assert message in err and "Traceback" not in err
    assert (tmp_path / "serve.out").read_text() == ""


def test_neither_import_gradtui_nor_the_command_line_imports_textual_serve():
    check = ("import sys, gradtui, gradtui.cli; gradtui.cli.build_parsers(); "
             "assert 'textual_serve' not in sys.modules and 'aiohttp' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


def test_a_tab_runs_the_terminal_command_line_and_no_tab_outlives_the_server_even_killed(tmp_path):
    """A websocket client stands in for a browser tab; the server is then killed with SIGKILL."""
    with served(tmp_path, "vanishing-sigmoid", "--set", "model.depth=6", "--fps", "5") as server:
        async def open_tab_then_kill_the_server() -> int:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"{server.url}ws?width=100&height=30"):
                    [tab] = server.wait_for_tabs(1)
                    command = Path(f"/proc/{tab}/cmdline").read_bytes().split(b"\0")[:-1]
                    assert [part.decode() for part in command] == [
                        sys.executable, "-m", "gradtui", "vanishing-sigmoid", "--set", "model.depth=6", "--fps", "5"]
                    environment = Path(f"/proc/{tab}/environ").read_bytes().split(b"\0")
                    assert b"TEXTUAL_DRIVER=gradtui.ui.web_driver:WholePacketWebDriver" in environment
                    os.kill(server.process.pid, signal.SIGKILL)  # no chance to clean up
                    server.process.wait(10)
                    return tab

        tab = asyncio.run(open_tab_then_kill_the_server())
        end = time.monotonic() + 10
        while alive(tab) and time.monotonic() < end:
            time.sleep(0.1)
        assert not alive(tab), "a tab's gradtui outlived its server"


WRITERS = """
import asyncio, threading
from gradtui.ui.web_driver import WholePacketWebDriver

async def main():
    driver = WholePacketWebDriver(app=None, size=(80, 24))
    screens = threading.Thread(target=lambda: [driver.write("x" * 20000) for _ in range(60)])
    download = threading.Thread(target=lambda: [driver.write_binary_encoded(("deliver_chunk", "k", bytes(65536)))
                                                for _ in range(20)])
    for thread in (screens, download):
        thread.start()
    for thread in (screens, download):
        thread.join()

asyncio.run(main())
"""


def test_screen_updates_and_a_download_written_at_once_reach_the_server_as_whole_packets():
    """A tab writes screen updates (app thread) while a download's chunks go out (input thread);
    the server, reading slowly, must get every packet intact: an interleaved one froze the tab."""
    from textual._binary_encode import dump

    child = subprocess.Popen([sys.executable, "-c", WRITERS], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def read(size: int) -> bytes:
        data = b""
        while len(data) < size:
            piece = child.stdout.read(min(size - len(data), 4096))
            assert piece, f"the stream ended inside a packet ({len(data)} of {size} bytes)"
            data += piece
            time.sleep(0.0002)  # a server slower than the writers: the pipe fills up
        return data

    chunk = dump(("deliver_chunk", "k", bytes(65536)))
    packets = []
    try:
        while (kind := child.stdout.read(1)) and len(packets) < 80:
            size = int.from_bytes(read(4), "big")
            assert (kind, size) in ((b"D", 20000), (b"P", len(chunk))), f"packet {len(packets)}: {kind!r}, {size} bytes"
            payload = read(size)
            assert payload == (b"x" * 20000 if kind == b"D" else chunk), f"packet {len(packets)} is mixed"
            packets.append(kind)
    finally:
        child.kill()
        child.wait()
    assert packets.count(b"D") == 60 and packets.count(b"P") == 20
