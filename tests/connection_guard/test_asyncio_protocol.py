"""The guarded asyncio protocol in front of a real aiohttp server (as the TUI server runs it),
with a route whose answer never ends."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from connection_guard import ConnectionLimits
from connection_guard.asyncio_protocol import GuardedFactory
from tests.support.polling import eventually

HOST = "127.0.0.1"


async def endless(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    while True:
        await response.write(b"x" * 65536)


async def test_a_client_that_does_not_read_its_answer_is_cut_off() -> None:
    app = web.Application()
    app.router.add_get("/endless", endless)
    runner = web.AppRunner(app)
    await runner.setup()
    assert runner.server is not None
    limits = ConnectionLimits(header_timeout=0.3, keepalive_timeout=30, max_connections=4)
    factory = GuardedFactory(runner.server, limits, name="t")
    server = await asyncio.get_running_loop().create_server(factory, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")

        async def gone() -> bool:
            return len(factory.registry) == 0

        # Not reading: the buffers fill, writes pause, and at the deadline the connection is
        # aborted (unguarded, it was held as long as the client liked).
        await eventually(gone, within=10.0, what="the connection aborted")
        received = bytearray()
        async with asyncio.timeout(10):
            with contextlib.suppress(ConnectionResetError):
                while chunk := await reader.read(65536):
                    received += chunk
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        writer.close()  # a failed test leaves the answer running until its client is gone
        server.close()
        await runner.cleanup()
