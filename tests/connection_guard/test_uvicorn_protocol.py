"""The guarded h11 protocol under a real uvicorn server, in this process, with a tiny app whose
``/hold`` route keeps its request busy until the test lets it go."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from connection_guard import ConnectionLimits
from connection_guard.uvicorn_protocol import uvicorn_options
from tests.support.polling import eventually
from tests.support.ports import free_port

HOST = "127.0.0.1"
CAP = 3


@dataclass
class Served:
    port: int
    release: asyncio.Event
    held: list[str]


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    release = asyncio.Event()
    held: list[str] = []

    async def hold(request: Request) -> PlainTextResponse:
        held.append(request.url.path)
        await release.wait()
        return PlainTextResponse("released")

    async def ok(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/hold", hold), Route("/ok", ok)])
    port = free_port(HOST)
    limits = ConnectionLimits(header_timeout=0.3, keepalive_timeout=30, max_connections=CAP)
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        log_config=None,
        lifespan="off",
        **uvicorn_options(limits, name="t"),
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: asyncio.sleep(0, server.started), what="uvicorn started")
    try:
        yield Served(port, release, held)
    finally:
        release.set()
        server.should_exit = True
        await serving


async def request(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    try:
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()


async def test_busy_connections_are_never_evicted_and_a_new_one_gets_a_503(served: Served) -> None:
    holding = [asyncio.create_task(request(served.port, "/hold")) for _ in range(CAP)]
    await eventually(lambda: asyncio.sleep(0, len(served.held) == CAP), what="3 requests held")

    refused = await request(served.port, "/ok")
    assert refused.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"Retry-After: 1\r\n" in refused
    assert refused.endswith(
        b"Too many connections: this server holds at most 3. Try again shortly.\n"
    )

    served.release.set()
    assert all(answer.endswith(b"released") for answer in await asyncio.gather(*holding))
    assert (await request(served.port, "/ok")).endswith(b"ok")


async def test_idle_connections_make_room_for_a_real_request(served: Served) -> None:
    idle = [await asyncio.open_connection(HOST, served.port) for _ in range(CAP * 3)]
    assert (await request(served.port, "/ok")).startswith(b"HTTP/1.1 200 ")
    async with asyncio.timeout(10):  # evicted, or closed at the header deadline
        assert [await reader.read() for reader, _ in idle] == [b""] * len(idle)
    for _, writer in idle:
        writer.close()


async def test_the_deadline_holds_for_each_request_of_a_kept_alive_connection(
    served: Served,
) -> None:
    reader, writer = await asyncio.open_connection(HOST, served.port)
    try:
        writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(10):
            first = await reader.readuntil(b"ok")
        assert first.startswith(b"HTTP/1.1 200 ")
        writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n")  # and the headers never end
        async with asyncio.timeout(10):
            second = await reader.read()
    finally:
        writer.close()
    assert second.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
