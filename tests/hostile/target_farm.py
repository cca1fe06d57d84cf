"""A farm of misbehaving monitor targets: one asyncio HTTP server on a real socket, one target
per path prefix (``http://127.0.0.1:PORT/<name>`` is the target's base URL).

Each target answers ``/api/v1/health/`` and ``/api/v1/health/detailed`` the same way (no token
check), so it misbehaves whichever the probe reads:

- ``healthy``: the backend's detailed health JSON (two services);
- ``huge-number``: ``consecutive_failures`` of 10**30 (no INTEGER column holds it);
- ``gigabyte``: ``Content-Length`` of 1 GiB, then whitespace for as long as anyone reads;
- ``endless``: no length, whitespace until the reader hangs up;
- ``drip``: headers, then one byte every :data:`DRIP_EVERY` seconds, for ever (each read
  finishes well within any per-read timeout);
- ``many-services``: 3,000 services;
- ``markup``: services named ``[/]`` and ``[@click=app.quit]``;
- ``bad-utf8``: bytes that are not UTF-8;
- ``nested``: JSON nested 100,000 deep;
- ``big-int``: an integer of 5,000 digits;
- ``nan``: a response time of ``NaN``.

Run alone (for benchmarks): ``python -m tests.hostile.target_farm --port PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

DRIP_EVERY = 0.1
GIB = 1024**3
FILLER = b" " * 65536

Writer = asyncio.StreamWriter
Handler = Callable[[Writer], Awaitable[None]]


def _detailed(**database: object) -> dict[str, object]:
    service: dict[str, object] = {
        "status": "healthy",
        "response_time_ms": 3.5,
        "consecutive_failures": 0,
        "circuit_breaker": {"state": "closed", "failed_calls": 0, "successful_calls": 10},
    }
    service.update(database)
    return {
        "status": "healthy",
        "checks": {"database": service, "s3": {"status": "healthy", "response_time_ms": 7.0}},
    }


async def _send(writer: Writer, body: bytes, *, length: int | None = None) -> None:
    size = len(body) if length is None else length
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {size}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()


def _json(document: object) -> Handler:
    body = json.dumps(document).encode()

    async def handle(writer: Writer) -> None:
        await _send(writer, body)

    return handle


def _raw(body: bytes) -> Handler:
    async def handle(writer: Writer) -> None:
        await _send(writer, body)

    return handle


async def _gigabyte(writer: Writer) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {GIB}\r\n\r\n".encode()
        + b'{"status": "healthy", "pad": "'
    )
    await _forever(writer)


async def _endless(writer: Writer) -> None:
    writer.write(
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"status":'
    )
    await _forever(writer)


async def _forever(writer: Writer) -> None:
    while True:
        writer.write(FILLER)
        await writer.drain()


async def _drip(writer: Writer) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
    await writer.drain()
    while True:
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(DRIP_EVERY)  # the target's pace, not a test's wait


TARGETS: dict[str, Handler] = {
    "healthy": _json(_detailed()),
    "huge-number": _json(_detailed(consecutive_failures=10**30)),
    "gigabyte": _gigabyte,
    "endless": _endless,
    "drip": _drip,
    "many-services": _json(
        {
            "status": "healthy",
            "checks": {f"svc{n:04d}": {"status": "healthy"} for n in range(3000)},
        }
    ),
    "markup": _json(
        {
            "status": "healthy",
            "checks": {"[/]": {"status": "healthy"}, "[@click=app.quit]": {"status": "down"}},
        }
    ),
    "bad-utf8": _raw(b'{"status": "healthy", "message": "\xff\xfe\xfa"}'),
    "nested": _raw(b'{"status": "healthy", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "big-int": _raw(b'{"status": "healthy", "n": ' + b"9" * 5000 + b"}"),
    "nan": _raw(
        b'{"status": "healthy", "checks": {"database": '
        b'{"status": "healthy", "response_time_ms": NaN}}}'
    ),
}


class TargetFarm:
    """The farm on ``127.0.0.1:port`` (a free one by default), on the running loop."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.requests: dict[str, int] = dict.fromkeys(TARGETS, 0)
        self._open: set[Writer] = set()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in self._open:  # the endless answers would otherwise keep going
                writer.transport.abort()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        self._open.add(writer)
        try:
            await self._answer(reader, writer)
        finally:
            self._open.discard(writer)
            with contextlib.suppress(ConnectionError):
                writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            name = path.strip("/").split("/", 1)[0]
            handler = TARGETS.get(name)
            if handler is None:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            else:
                self.requests[name] += 1
                await handler(writer)


async def _main(port: int) -> None:
    farm = TargetFarm()
    await farm.start(port)
    print(f"target farm on 127.0.0.1:{farm.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(_main(parser.parse_args().port))
