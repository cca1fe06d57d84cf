"""``questcity tui --serve`` under load (#11): a cap on sessions (each tab is a TUI process; ten
took 820 MB on main) with a clear refusal beyond it, and the connection bounds of every server we
start. The server and its tabs' TUI processes are real processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.monitor.tui.history import CONFIG_TOML
from tests.support.polling import eventually
from tests.support.ports import free_port
from tests.support.process import ManagedProcess, log_tail

HOST = "127.0.0.1"


@dataclass
class Served:
    port: int
    base: str


@pytest.fixture
def config(history_template: Path, tmp_path: Path) -> Path:
    for file in history_template.parent.glob(history_template.name + "*"):
        shutil.copy(file, tmp_path / file.name)
    path = tmp_path / "monitor.toml"
    path.write_text(CONFIG_TOML.format(url=f"sqlite:///{tmp_path / history_template.name}"))
    return path


@contextlib.asynccontextmanager
async def serving(config: Path, *flags: str) -> AsyncIterator[Served]:
    """``questcity tui --serve FLAGS`` in a child process (textual-serve leaves its tabs' pipes
    open when a session ends, which this process would report as unclosed)."""
    port = free_port(HOST)
    argv = [sys.executable, "-m", "monitor.tui", "--serve", "--config", str(config)]
    log = config.parent / "serve.log"
    server = ManagedProcess([*argv, "--port", str(port), *flags], log_path=log, cwd=config.parent)
    server.start()
    base = f"http://{HOST}:{port}"
    try:
        async with aiohttp.ClientSession() as client:

            async def answers() -> bool:
                assert server.running, log_tail(log)
                try:
                    async with client.get(f"{base}/") as page:
                        return page.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(answers, within=30.0, what="the TUI server answering")
        yield Served(port, base)
    finally:
        server.stop()
        if server.pid is not None:  # tabs' TUI processes share the server's process group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)


@pytest.fixture
async def one_session(config: Path) -> AsyncIterator[Served]:
    async with serving(config, "--max-sessions", "1") as served:
        yield served


@pytest.fixture
async def few_connections(config: Path) -> AsyncIterator[Served]:
    flags = ("--max-connections", "10", "--header-timeout", "0.5")
    async with serving(config, *flags) as served:
        yield served


async def first_frame(websocket: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    async with asyncio.timeout(30):
        return await websocket.receive()


async def test_one_session_more_than_the_cap_is_told_the_cap(one_session: Served) -> None:
    base = one_session.base
    async with aiohttp.ClientSession() as client:
        first = await client.ws_connect(f"{base}/ws?width=80&height=24")
        assert (await first_frame(first)).type is aiohttp.WSMsgType.BINARY  # the TUI draws

        second = await client.ws_connect(f"{base}/ws")
        told = await first_frame(second)
        assert told.type is aiohttp.WSMsgType.BINARY
        assert b"already runs 1 sessions, its cap (--max-sessions 1" in told.data
        assert b"higher --max-sessions" in told.data
        closed = await first_frame(second)
        assert closed.type is aiohttp.WSMsgType.CLOSE and closed.data == 1013

        page = await client.get(f"{base}/")
        assert page.status == 503
        assert page.headers["Retry-After"] == "30"
        assert "--max-sessions 1" in await page.text()

        await first.close()

        async def room_again() -> bool:  # the session ends when its socket closes
            async with client.get(f"{base}/") as page:
                return page.status == 200

        await eventually(room_again, within=30.0, what="room for a session again")


async def test_idle_connections_do_not_lock_the_page_out(few_connections: Served) -> None:
    port = few_connections.port
    idle = [await asyncio.open_connection(HOST, port) for _ in range(30)]
    async with aiohttp.ClientSession() as client, asyncio.timeout(10):
        assert (await client.get(f"http://{HOST}:{port}/")).status == 200
    async with asyncio.timeout(10):  # evicted, or closed at the header deadline
        assert [await reader.read() for reader, _ in idle] == [b""] * len(idle)
    for _, writer in idle:
        writer.close()

    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
    async with asyncio.timeout(10):
        sent = await reader.read()
    writer.close()
    assert sent.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
