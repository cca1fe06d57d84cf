"""``questcity tui --serve`` for real: the server in a child process, the page in headless
Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright; no browser is downloaded).

The TUI draws on a canvas, so the test reads what the browser received on the websocket (the
terminal output the page fed to xterm.js) and checks the page marked the first bytes drawn.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from monitor.tui.serve import PASSWORD_ENV
from tests.monitor.tui.history import CONFIG_TOML
from tests.support.browser import chromium
from tests.support.ports import free_port
from tests.support.process import ManagedProcess, log_tail

PASSWORD = "correct horse battery"
RENDER_TIMEOUT = 20.0
ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|.)")


@dataclass
class Served:
    url: str
    log: Path


@pytest.fixture
def served(history_template: Path, tmp_path: Path) -> Iterator[Served]:
    for file in history_template.parent.glob(history_template.name + "*"):
        shutil.copy(file, tmp_path / file.name)
    config = tmp_path / "monitor.toml"
    config.write_text(CONFIG_TOML.format(url=f"sqlite:///{tmp_path / history_template.name}"))
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, PASSWORD_ENV: PASSWORD}
    server = ManagedProcess(
        [
            sys.executable,
            "-m",
            "monitor.tui",
            "--serve",
            "--config",
            str(config),
            "--port",
            str(port),
        ],
        log_path=log,
        env=env,
        cwd=tmp_path,
    )
    server.start()
    try:
        _wait_listening(server, port, log)
        yield Served(f"http://127.0.0.1:{port}", log)
    finally:
        server.stop()
        if server.pid is not None:  # tabs' TUI processes share the server's process group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)


def _wait_listening(server: ManagedProcess, port: int, log: Path) -> None:
    deadline = time.monotonic() + RENDER_TIMEOUT
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if server.exited_within(0.05):
                pytest.fail(f"questcity tui --serve exited:\n{log_tail(log)}")
    pytest.fail(f"questcity tui --serve did not listen within {RENDER_TIMEOUT} s:\n{log_tail(log)}")


def test_serve_requires_the_password(served: Served) -> None:
    assert httpx.get(served.url + "/").status_code == 401
    assert httpx.get(served.url + "/ws").status_code == 401
    assert httpx.get(served.url + "/", auth=("oncall", PASSWORD)).status_code == 200


def test_the_tui_renders_in_headless_chromium(served: Served) -> None:
    from playwright.sync_api import Route, WebSocket
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    received = bytearray()
    sockets: list[WebSocket] = []

    def watch(websocket: WebSocket) -> None:
        def frame(payload: str | bytes) -> None:
            received.extend(payload.encode() if isinstance(payload, str) else payload)

        websocket.on("framereceived", frame)
        sockets.append(websocket)

    def screen() -> str:
        return ANSI.sub("", received.decode("utf-8", errors="replace"))

    def rendered(_frame: object = None) -> bool:
        text = screen()
        return "OUTAGE" in text and "QuestCity API" in text

    def offline(route: Route) -> None:  # the page links a web font: never leave the machine
        route.abort()

    with chromium() as browser:
        context = browser.new_context(
            http_credentials={"username": "oncall", "password": PASSWORD},
            viewport={"width": 1400, "height": 900},
        )
        context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), offline)
        page = context.new_page()
        page.on("websocket", watch)
        timeout_ms = RENDER_TIMEOUT * 1000
        try:
            with page.expect_websocket(timeout=timeout_ms):
                page.goto(served.url + "/", wait_until="domcontentloaded")
            if not rendered():  # woken by each frame the terminal receives, not by a timer
                sockets[0].wait_for_event("framereceived", rendered, timeout=timeout_ms)
        except PlaywrightTimeout:
            pytest.fail(
                f"the TUI did not render within {RENDER_TIMEOUT} s; received "
                f"{len(received)} bytes\n{screen()[-2000:]}\n{log_tail(served.log)}"
            )
        page.wait_for_function("document.body.classList.contains('-first-byte')")
        assert page.locator("#terminal.-connected").count() == 1
        assert "Image storage" in screen()
        context.close()
