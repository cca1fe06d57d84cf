"""The stack's front door: a TLS-terminating proxy in front of the backend, as a load balancer
or nginx is in front of it in production.

    door = await FrontDoor(("127.0.0.1", 8443), upstream=proxy.address, cert=..., key=...).start()
    ...                        # https://127.0.0.1:8443/api/v1/health/live reaches the backend
    await door.close()

Bytes pass both ways once the TLS handshake is done; nothing of HTTP is parsed, with one
exception a reverse proxy makes too: when the backend cannot be reached at all (refused, reset,
no answer to the connect within :data:`CONNECT_TIMEOUT`) the client gets ``502 Bad Gateway``
before the connection closes, so what watches the front door sees the door answer and say that
the backend behind it is gone (``[STATUS] == 200 failed: got 502``), not a door that is itself
shut.

It runs on the event loop of ``questcity up`` itself, beside the control socket, not in a process
of its own: it is a few dozen lines of asyncio with nothing to start, record, wait for or stop
apart, and the stack's fault proxies already live in that process. ``questcity up`` is mostly
idle (it waits for a signal), so the door's few connections do not queue behind other work.
Bounded (:class:`Limits`), because what connects to it may be anything on this machine: the
door listens in the clear and takes a slot for a connection as it is accepted, before any TLS;
with :data:`MAX_CONNECTIONS` slots taken a new connection is closed at once (counted in
:attr:`FrontDoor.refused`), not queued. A connection then has :data:`HANDSHAKE_TIMEOUT` to finish
its TLS handshake (one that never speaks TLS is dropped then), the backend
:data:`CONNECT_TIMEOUT` to accept it, and it is cut after :data:`IDLE_TIMEOUT` with no byte
either way. So an idle or hostile client holds a slot and a descriptor for a bounded time, and at
most :data:`MAX_CONNECTIONS` of them at once. Every one of those deadlines runs on the door's
:class:`~shared.resilience.Clock` (tests pass a :class:`~shared.resilience.testing.FakeClock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from shared.resilience import SYSTEM_CLOCK, Clock, within

CONNECT_TIMEOUT = 3.0
HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 60.0
MAX_CONNECTIONS = 256
_CHUNK = 64 * 1024
_BACKSTOP = 60.0
"""asyncio's own handshake timer (on the loop's clock), past the door's: a backstop only."""
_GONE = b'{"status":"bad gateway"}'
BAD_GATEWAY = (
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_GONE), _GONE)
)
"""What a client is answered when the backend cannot be reached."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The door's bounds (seconds, and connections open at once); tests make them small."""

    connections: int = MAX_CONNECTIONS
    handshake: float = HANDSHAKE_TIMEOUT
    connect: float = CONNECT_TIMEOUT
    """The backend's connect, and the orderly close of the client's connection."""
    idle: float = IDLE_TIMEOUT
    """No byte either way for this long: the connection is cut."""


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """TLS 1.2 and up, with the certificate chain at ``cert`` and its key at ``key``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class FrontDoor:
    """Listens with TLS on ``address`` and passes each connection to ``upstream`` in the clear."""

    def __init__(
        self,
        address: tuple[str, int],
        *,
        upstream: tuple[str, int],
        cert: Path,
        key: Path,
        limits: Limits = Limits(),
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.address = address
        self.upstream = upstream
        self.limits = limits
        self.clock = clock
        self._context = server_context(cert, key)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.refused = 0
        """Connections closed at once: every slot was taken."""
        self.dropped = 0
        """Connections cut before their end: no TLS handshake in time, or idle too long."""

    @property
    def open(self) -> int:
        """Connections holding a slot now."""
        return len(self._tasks)

    def url(self, path: str = "/") -> str:
        host, port = self.address
        return f"https://{host}:{port}{path}"

    async def start(self) -> FrontDoor:
        """Bind and listen (an :class:`OSError` when the port is taken)."""
        host, port = self.address
        self._server = await asyncio.start_server(
            self._accept, host, port, reuse_address=True, limit=_CHUNK
        )
        return self

    async def close(self) -> None:
        """Stop listening and cut every open connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._tasks) >= self.limits.connections:
            self.refused += 1
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._pass(reader, writer)
        except asyncio.CancelledError:
            # close() cut it. Not raised on: Python 3.11's streams log a client_connected_cb
            # task that ends cancelled as an error (task.exception() raises in its callback).
            writer.transport.abort()
        finally:
            self._tasks.discard(task)

    async def _pass(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        limits, clock = self.limits, self.clock
        backstop = max(_BACKSTOP, 2 * limits.handshake)
        # Read nothing before TLS is installed: the handshake runs in a task of its own (under
        # within()), a turn of the loop later, and a ClientHello read into the clear stream's
        # buffer meanwhile would be lost to it. start_tls() resumes reading.
        cast(asyncio.Transport, writer.transport).pause_reading()
        try:
            await within(
                writer.start_tls(self._context, ssl_handshake_timeout=backstop),
                limits.handshake,
                clock,
            )
        except (OSError, TimeoutError):  # (ssl.SSLError is an OSError) no TLS, or too slow
            self.dropped += 1
            writer.transport.abort()
            return
        try:
            await self._serve(reader, writer)
        except OSError:
            pass  # the client went away
        finally:
            await _close(writer, limits.connect, clock)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, upstream = await within(
                asyncio.open_connection(*self.upstream, limit=_CHUNK),
                self.limits.connect,
                self.clock,
            )
        except (OSError, TimeoutError):
            writer.write(BAD_GATEWAY)  # (sent by the close that follows)
            return
        activity = _Activity(self.clock)
        asking = asyncio.create_task(_pump(reader, upstream, activity))
        answering = asyncio.create_task(_pump(up_reader, writer, activity))
        idle = asyncio.create_task(activity.lapse(self.limits.idle))
        try:
            await asyncio.wait({asking, answering, idle}, return_when=asyncio.FIRST_COMPLETED)
            if asking.done() and not answering.done() and asking.exception() is None:
                # The client has said all it will (EOF): the backend is told so, and its answer
                # still passes until it closes (as it does an idle keep-alive connection).
                with contextlib.suppress(OSError):
                    upstream.write_eof()
                await asyncio.wait({answering, idle}, return_when=asyncio.FIRST_COMPLETED)
            if idle.done():
                self.dropped += 1
        finally:
            # Cut first: the wait below may itself be cancelled (the door closing).
            upstream.transport.abort()
            for task in (asking, answering, idle):
                task.cancel()
            await asyncio.gather(asking, answering, idle, return_exceptions=True)


class _Activity:
    """When a byte last passed either way, on ``clock``."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.last = clock.monotonic()

    def touch(self) -> None:
        self.last = self._clock.monotonic()

    async def lapse(self, idle: float) -> None:
        """Return once no byte has passed for ``idle`` seconds (a timer that looks again when
        it is due, not one reset on every chunk)."""
        while (left := self.last + idle - self._clock.monotonic()) > 0:
            await self._clock.sleep(left)


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, activity: _Activity
) -> None:
    while data := await reader.read(_CHUNK):
        activity.touch()
        writer.write(data)
        await writer.drain()
        activity.touch()  # (a slow reader that keeps reading is not idle)


async def _close(writer: asyncio.StreamWriter, seconds: float, clock: Clock) -> None:
    """Close the client's connection in TLS's orderly way (what is buffered is sent first),
    within ``seconds`` of ``clock``; else cut it."""
    writer.close()
    with contextlib.suppress(OSError, TimeoutError, asyncio.CancelledError):
        await within(writer.wait_closed(), seconds, clock)
    writer.transport.abort()
