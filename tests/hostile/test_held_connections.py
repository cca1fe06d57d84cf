"""Held connections: a flood of idle and slowloris connections takes no server we start down.

The backend and the status page run as real processes, each with a hard open-file limit of
:data:`FILES` (so that a flood can exhaust it here, as 20,000 connections exhausted it on main),
a connection cap of :data:`CAP` and a header deadline of :data:`HEADER_TIMEOUT` seconds. On main
the flood made both stop accepting (no descriptor left; ``/live`` unanswered) and the idle
connections were held for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.polling import eventually
from tests.support.ports import free_port
from tests.support.process import ManagedProcess, log_tail

HOST = "127.0.0.1"
FILES = 400
"""The server's hard ``RLIMIT_NOFILE``: the flood below is larger."""
CAP = 100
HEADER_TIMEOUT = 0.5
FLOOD = 500
SLOW = 5
LIVE = "/api/v1/health/live"
ROOT = Path(__file__).resolve().parents[2]

_LIMITED = (
    "import os, resource, sys; n = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


def limited(*argv: str) -> list[str]:
    """``python argv...`` with at most :data:`FILES` open files, for good."""
    return [sys.executable, "-c", _LIMITED, str(FILES), *argv]


def clean_env(**variables: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("QUESTCITY_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(variables)
    return env


@dataclass
class Served:
    process: ManagedProcess
    port: int
    path: str
    """A route that answers 200 on this server."""

    def log(self) -> str:
        return log_tail(self.process.log_path, 80)


@pytest.fixture(autouse=True)
def enough_files_for_the_flood() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = FLOOD + SLOW + 200
    if soft < needed <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@contextlib.asynccontextmanager
async def running(process: ManagedProcess, port: int, path: str) -> AsyncIterator[Served]:
    process.start()
    served = Served(process, port, path)
    try:
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=2.0) as client:

            async def answers() -> bool:
                assert process.running, f"the server exited:\n{served.log()}"
                try:
                    return (await client.get(path)).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(answers, within=60.0, what=f"GET {path} answering 200")
        yield served
    finally:
        process.stop()


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Served]:
    port = free_port(HOST)
    env = clean_env(
        QUESTCITY_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'questcity.db'}",
        QUESTCITY_KEYS_DIR=str(tmp_path / "keys"),
        QUESTCITY_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        QUESTCITY_MAX_CONNECTIONS=str(CAP),
    )
    argv = limited("-m", "questcity", "backend", "--host", HOST, "--port", str(port))
    process = ManagedProcess(argv, log_path=tmp_path / "backend.log", env=env, cwd=tmp_path)
    async with running(process, port, LIVE) as served:
        yield served


@pytest.fixture
async def statuspage(tmp_path: Path) -> AsyncIterator[Served]:
    port = free_port(HOST)
    config = tmp_path / "monitor.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "monitor.db"}"\n')
    argv = limited(
        "-m", "questcity", "statuspage", "--config", str(config), "--host", HOST,
        "--port", str(port), "--header-timeout", str(HEADER_TIMEOUT),
        "--max-connections", str(CAP),
    )  # fmt: skip
    log = tmp_path / "statuspage.log"
    process = ManagedProcess(argv, log_path=log, env=clean_env(), cwd=tmp_path)
    async with running(process, port, "/api/v2/status.json") as served:
        yield served


# -- the clients --------------------------------------------------------------------------------

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def idle_connections(port: int, count: int) -> list[Connection]:
    """``count`` connections that never send a byte."""
    return [await asyncio.open_connection(HOST, port) for _ in range(count)]


class Slowloris:
    """A connection that sends a request's headers a line every 0.1 s and never ends them."""

    def __init__(self, connection: Connection) -> None:
        self.reader, self.writer = connection
        self.lines = 0
        self.writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        self._drip = asyncio.get_running_loop().call_later(0.1, self.drip)

    def drip(self) -> None:
        if self.reader.at_eof() or self.writer.is_closing():
            return
        self.lines += 1
        self.writer.write(b"X-Drip: %d\r\n" % self.lines)
        self._drip = asyncio.get_running_loop().call_later(0.1, self.drip)

    def stop(self) -> None:
        self._drip.cancel()


async def answer_of(port: int, path: str, *, method: str = "GET") -> tuple[int, bytes]:
    """One request on a new connection: its status and everything the server sent."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
        )
        answer = await reader.read()
    finally:
        writer.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, answer


async def closed_by_server(connection: Connection) -> bytes:
    """Everything the server sends before it closes ``connection`` (read to EOF)."""
    reader, writer = connection
    try:
        return await reader.read()
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


async def flood_and_check(served: Served) -> None:
    idle = await idle_connections(served.port, FLOOD)
    slow = [Slowloris(c) for c in await idle_connections(served.port, SLOW)]
    try:
        # A connection made after the flood is answered, at once: the cap evicted the oldest
        # idle connections to make room for it (on main: no descriptor left to accept it).
        async with asyncio.timeout(10):
            status, answer = await answer_of(served.port, served.path)
        assert status == 200, answer[:300]

        # Every held connection is closed by the server: evicted, or at its header deadline.
        async with asyncio.timeout(15):
            await asyncio.gather(*(closed_by_server(c) for c in idle))
            dripped = await asyncio.gather(*(closed_by_server((s.reader, s.writer)) for s in slow))
        for sent in dripped:  # evicted (nothing) or timed out with a 408, never answered
            assert sent in (b"",) or sent.startswith(b"HTTP/1.1 408 "), sent[:300]
    finally:
        for s in slow:
            s.stop()

    async with asyncio.timeout(10):
        status, answer = await answer_of(served.port, served.path)
    assert status == 200, answer[:300]
    assert served.process.running
    assert "Traceback" not in served.log()


async def test_backend_live_answers_through_a_flood_of_held_connections(backend: Served) -> None:
    await flood_and_check(backend)


async def test_statuspage_answers_through_a_flood_of_held_connections(statuspage: Served) -> None:
    await flood_and_check(statuspage)


async def test_a_slow_header_sender_gets_a_408_at_the_deadline(backend: Served) -> None:
    slow = Slowloris(await asyncio.open_connection(HOST, backend.port))
    try:
        async with asyncio.timeout(10):
            sent = await closed_by_server((slow.reader, slow.writer))
    finally:
        slow.stop()
    assert sent.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), sent[:300]
    assert b"did not arrive in time" in sent
    assert slow.lines >= 1  # it kept sending, and was closed all the same


async def test_a_request_body_that_never_comes_gets_a_408_at_the_deadline(
    backend: Served,
) -> None:
    # The headers complete, the body never does: the handler waited in request.body() for
    # ever, and the connection, busy for the cap, was never evicted (the cap bypassed).
    connection = await asyncio.open_connection(HOST, backend.port)
    connection[1].write(
        f"POST /api/v1/auth/register HTTP/1.1\r\nHost: {HOST}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
    )
    async with asyncio.timeout(10):
        sent = await closed_by_server(connection)
    assert sent.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), sent[:300]
    assert b"request body stopped arriving" in sent
    assert "Traceback" not in backend.log()


async def test_a_body_nobody_reads_does_not_keep_its_connection(backend: Served) -> None:
    # /live answers without reading the 60,000 bytes promised (within the JSON limit): the
    # connection was then kept alive, and each byte of the body put off its keep-alive timeout.
    reader, writer = await asyncio.open_connection(HOST, backend.port)
    writer.write(f"GET {LIVE} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 60000\r\n\r\n".encode())
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(b"x")
        await closed_by_server((reader, writer))
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head[:300]
