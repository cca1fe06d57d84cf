"""The guarded h11 protocol under a real uvicorn server, in this process, with a tiny app whose
``/hold`` route keeps its request busy until the test lets it go, ``/body`` reads its request's
body and ``/endless`` streams an answer that never ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
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
    server: uvicorn.Server


@contextlib.asynccontextmanager
async def serving(header_timeout: float) -> AsyncIterator[Served]:
    release = asyncio.Event()
    held: list[str] = []

    async def hold(request: Request) -> PlainTextResponse:
        held.append(request.url.path)
        await release.wait()
        return PlainTextResponse("released")

    async def ok(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def body(request: Request) -> PlainTextResponse:
        held.append(request.url.path)
        return PlainTextResponse(f"{len(await request.body())} bytes")

    async def endless(request: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            while True:
                yield b"x" * 65536
                # Once the client is gone uvicorn's send returns at once: without a suspension
                # point this loop would never let the disconnect cancel it.
                await asyncio.sleep(0)

        return StreamingResponse(chunks())

    routes = [
        Route("/hold", hold),
        Route("/ok", ok),
        Route("/body", body, methods=["POST"]),
        Route("/endless", endless),
    ]
    app = Starlette(routes=routes)
    port = free_port(HOST)
    limits = ConnectionLimits(
        header_timeout=header_timeout, keepalive_timeout=30, max_connections=CAP
    )
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        log_config=None,
        lifespan="off",
        **uvicorn_options(limits, name="t"),
    )
    server = uvicorn.Server(config)
    serving_task = asyncio.create_task(server.serve())
    await eventually(lambda: asyncio.sleep(0, server.started), what="uvicorn started")
    try:
        yield Served(port, release, held, server)
    finally:
        release.set()
        server.should_exit = server.force_exit = True  # a failed test may leave a request open
        await serving_task


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serving(header_timeout=0.3) as served:
        yield served


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


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends before it closes the connection (a reset ends it too)."""
    received = bytearray()
    async with asyncio.timeout(10):
        with contextlib.suppress(ConnectionResetError):
            while chunk := await reader.read(65536):
                received += chunk
    return bytes(received)


async def test_a_body_that_stops_arriving_gets_a_408_and_is_closed(served: Served) -> None:
    reader, writer = await asyncio.open_connection(HOST, served.port)
    try:
        # The headers complete, then ten bytes of a 100,000-byte body, then nothing: on the
        # unguarded body wait the handler sat in request.body() for ever.
        writer.write(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        writer.write(b"0123456789")
        answer = await read_to_eof(reader)
    finally:
        writer.close()
    assert served.held == ["/body"]
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer[:200]
    assert b"request body stopped arriving" in answer


async def test_a_body_that_keeps_arriving_is_read_whole(served: Served) -> None:
    reader, writer = await asyncio.open_connection(HOST, served.port)
    try:
        writer.write(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n")
        writer.write(b"Connection: close\r\n\r\nabc")
        await eventually(lambda: asyncio.sleep(0, served.held == ["/body"]), what="handler")
        writer.write(b"def")
        answer = await read_to_eof(reader)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"6 bytes")


async def test_an_answer_before_the_body_closes_the_connection(served: Served) -> None:
    reader, writer = await asyncio.open_connection(HOST, served.port)
    try:
        # /ok answers without reading the body it was promised: the connection is closed after
        # the answer (it was kept alive, and each byte of the body cancelled its keep-alive timer).
        writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        answer = await read_to_eof(reader)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"ok")


async def test_stalled_bodies_make_room_for_a_real_request_at_the_cap() -> None:
    async with serving(header_timeout=30) as served:  # no deadline will close them here
        stalled = [await asyncio.open_connection(HOST, served.port) for _ in range(CAP)]
        for _, writer in stalled:
            writer.write(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        await eventually(lambda: asyncio.sleep(0, len(served.held) == CAP), what="bodies held")

        assert (await request(served.port, "/ok")).endswith(b"ok")  # on main: a 503
        assert await read_to_eof(stalled[0][0]) == b""  # the oldest was evicted
        for _, writer in stalled:
            writer.close()


async def test_a_client_that_does_not_read_its_answer_is_cut_off(served: Served) -> None:
    reader, writer = await asyncio.open_connection(HOST, served.port)
    try:
        writer.write(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")

        async def gone() -> bool:
            return not served.server.server_state.connections

        # Not reading: the socket buffers fill, the server's writes pause, and at the deadline
        # the connection is aborted (unguarded, it was held as long as the client liked).
        await eventually(gone, within=10.0, what="the connection aborted")
        received = await read_to_eof(reader)
    finally:
        writer.close()
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
