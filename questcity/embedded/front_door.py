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
Bounded: at most :data:`MAX_CONNECTIONS` open at once (more wait in the listen backlog),
a handshake within :data:`HANDSHAKE_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

CONNECT_TIMEOUT = 3.0
HANDSHAKE_TIMEOUT = 10.0
MAX_CONNECTIONS = 256
_CHUNK = 64 * 1024
_GONE = b'{"status":"bad gateway"}'
BAD_GATEWAY = (
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_GONE), _GONE)
)
"""What a client is answered when the backend cannot be reached."""


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """TLS 1.2 and up, with the certificate chain at ``cert`` and its key at ``key``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class FrontDoor:
    """Listens with TLS on ``address`` and passes each connection to ``upstream`` in the clear."""

    def __init__(
        self, address: tuple[str, int], *, upstream: tuple[str, int], cert: Path, key: Path
    ) -> None:
        self.address = address
        self.upstream = upstream
        self._context = server_context(cert, key)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    def url(self, path: str = "/") -> str:
        host, port = self.address
        return f"https://{host}:{port}{path}"

    async def start(self) -> FrontDoor:
        """Bind and listen (an :class:`OSError` when the port is taken)."""
        host, port = self.address
        self._server = await asyncio.start_server(
            self._accept,
            host,
            port,
            ssl=self._context,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
            reuse_address=True,
            limit=_CHUNK,
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
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            async with self._slots:
                await self._serve(reader, writer)
        except (OSError, ssl.SSLError):
            pass  # the client went away, or spoke no TLS worth answering
        finally:
            self._tasks.discard(task)
            await _close(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, upstream = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream, limit=_CHUNK), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError):
            writer.write(BAD_GATEWAY)  # (sent by the close that follows)
            return
        asking = asyncio.create_task(_pump(reader, upstream))
        answering = asyncio.create_task(_pump(up_reader, writer))
        try:
            await asyncio.wait({asking, answering}, return_when=asyncio.FIRST_COMPLETED)
            if not answering.done() and asking.exception() is None:
                # The client has said all it will (EOF): the backend is told so, and its answer
                # still passes until it closes (as it does an idle keep-alive connection).
                with contextlib.suppress(OSError):
                    upstream.write_eof()
                await answering
        finally:
            for pump in (asking, answering):
                pump.cancel()
            await asyncio.gather(asking, answering, return_exceptions=True)
            upstream.transport.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(_CHUNK):
        writer.write(data)
        await writer.drain()


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close the client's connection in TLS's orderly way (what is buffered is sent first),
    within :data:`CONNECT_TIMEOUT`; else cut it."""
    writer.close()
    with contextlib.suppress(OSError, TimeoutError, ssl.SSLError, asyncio.CancelledError):
        await asyncio.wait_for(writer.wait_closed(), CONNECT_TIMEOUT)
    writer.transport.abort()
