"""`gradtui serve` in a real browser (Debian's Chromium through Playwright).

A tab gets its own gradtui process running the command line the terminal would; keys,
help, the preset picker and export work in it; the session cap refuses the next tab with
a page saying so (which tries again and gets the place a closed tab frees); closing a tab
or stopping the server ends the tabs' processes.
"""

from __future__ import annotations

import time
import zipfile

import pytest
from playwright.sync_api import sync_playwright

from tests.serving import APP_START, alive, launch_chromium, open_tab, pixel_spread, served, wait_for_screen, wait_until_gone

SMALL = ("--set", "model.depth=6")  # the same screen as the default preset, less CPU per tab


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 800}, accept_downloads=True)
    yield context
    context.close()


def wait_until_ended(pid: int, timeout: float = 15) -> None:
    end = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > end:
            raise AssertionError(f"the tab's gradtui process {pid} still runs {timeout} s after its tab closed")
        time.sleep(0.1)


def test_a_tab_runs_gradtui_and_keys_help_picker_and_export_work(tmp_path, context):
    downloads = []
    context.on("page", lambda page: page.on("download", lambda download: downloads.append(download)))  # textual-serve opens a tab per file
    with served(tmp_path, *SMALL) as server:
        page = open_tab(context, server.url)
        [tab] = server.wait_for_tabs(1)
        wait_for_screen(page, r"mlp 6x64 sigmoid ")  # the tab runs `gradtui --set model.depth=6`
        page.keyboard.press("a")
        wait_for_screen(page, r"mlp 6x64 (relu|tanh|leaky_relu) ")  # as in the terminal: the activation changed

        assert all(url.startswith(server.url) for url in page.requested), page.requested  # nothing from elsewhere
        assert f"{server.url}static/fonts/RobotoMono-VariableFont_wght.ttf" in page.requested

        spread = pixel_spread(page, page.screenshot())
        assert spread["std"] > 10 and spread["colours"] >= 8, f"the page looks blank: {spread}"

        page.keyboard.press("?")
        wait_for_screen(page, "gradtui help")
        page.keyboard.press("Escape")
        wait_until_gone(page, "gradtui help")
        page.keyboard.press("p")
        wait_for_screen(page, "Enter or double click loads")
        page.keyboard.press("Escape")
        wait_until_gone(page, "Enter or double click loads")

        page.keyboard.press("e")
        wait_for_screen(page, "saved on the server")
        end = time.monotonic() + 15
        while not downloads and time.monotonic() < end:
            page.wait_for_timeout(100)
        assert downloads, "export started no download"
        [folder] = tmp_path.glob("gradtui-export-*")  # the tab's process works in the server's folder
        assert downloads[0].suggested_filename == f"{folder.name}.zip"
        archived = sorted(zipfile.ZipFile(downloads[0].path()).namelist())
        assert archived == sorted(f"{folder.name}/{path.name}" for path in folder.iterdir())
        assert any(name.endswith(".svg") for name in archived) and any(name.endswith(".jsonl") for name in archived)

        page.close()
        wait_until_ended(tab)
        assert server.tab_pids() == []
        assert server.stop() == 0


def test_the_session_cap_refuses_the_next_tab_which_gets_the_place_a_closed_tab_frees(tmp_path, context):
    with served(tmp_path, *SMALL, "--max-sessions", "1") as server:
        first = open_tab(context, server.url)
        [first_pid] = server.wait_for_tabs(1)

        waiting = open_tab(context, server.url, expect_app=False)
        assert waiting.response.status == 503
        text = waiting.inner_text("body")
        assert "session limit reached" in text and "at most 1 gradtui session at once" in text
        time.sleep(1)
        assert server.tab_pids() == [first_pid]  # no process for the refused tab

        first.close()
        wait_until_ended(first_pid)
        wait_for_screen(waiting, r"hidden\.0", APP_START)  # the waiting tab tried again and got the place
        [second_pid] = server.wait_for_tabs(1)
        assert server.stop() == 0
        assert not alive(second_pid)  # stopping the server ended the open tab's process
