""":mod:`connection_guard` in front of any asyncio HTTP/1.1 server (aiohttp's, for the TUI server).

:class:`GuardedFactory` wraps a protocol factory (``aiohttp.web.Server`` is one) so that each
connection is admitted by a :class:`~connection_guard.limits.ConnectionRegistry` and must send
its first request's headers (up to the blank line) within ``header_timeout`` seconds. After that
the connection is busy for the registry and the wrapped server's own keep-alive timeout governs
it: this layer does not parse HTTP, so it bounds the first request of a connection, not later
ones (the uvicorn protocol, which reads h11's state, bounds every request), and it has no body
progress deadline: the TUI server's routes take no request bodies but its login form's, which
aiohttp reads within its own limits. What it does bound whatever the protocol: an answer the
client stops taking (writes paused by flow control) for ``header_timeout`` aborts the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from connection_guard.limits import (
    REQUEST_TIMEOUT,
    ConnectionLimits,
    ConnectionRegistry,
    refusal,
)

END_OF_HEADERS = b"\r\n\r\n"


class GuardedProtocol(asyncio.Protocol):
    def __init__(self, inner: asyncio.Protocol, factory: GuardedFactory) -> None:
        self.inner = inner
        self.factory = factory
        self.transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._write_deadline: asyncio.TimerHandle | None = None
        self._refused = False
        self._waiting = True
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        if not self.factory.registry.admit(self):
            self._refused = True
            self.transport.write(refusal(self.factory.registry.cap))
            self.transport.close()
            return
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self.factory.limits.header_timeout, self._expired)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._waiting:
            seen = self._tail + data
            if END_OF_HEADERS in seen:
                self._waiting = False
                self._disarm()
                self.factory.registry.busy(self)
            else:
                self._tail = seen[-(len(END_OF_HEADERS) - 1) :]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self._refused else self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._disarm()
        self._disarm_writes()
        self.factory.registry.release(self)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._refused:
            return
        if self._write_deadline is None:
            loop = asyncio.get_running_loop()
            timeout = self.factory.limits.header_timeout
            self._write_deadline = loop.call_later(timeout, self._write_stalled)
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self._refused:
            return
        self._disarm_writes()
        self.inner.resume_writing()

    def _write_stalled(self) -> None:
        """The client has taken none of the answer for the timeout: it is not reading."""
        self._write_deadline = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    def _disarm_writes(self) -> None:
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None

    def evict(self) -> None:
        self._disarm()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _expired(self) -> None:
        self._deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        if self._tail:  # part of a request came: say why it is closed
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


class GuardedFactory:
    """A protocol factory for ``loop.create_server``: ``inner()``'s protocols, guarded."""

    def __init__(
        self, inner: Callable[[], asyncio.Protocol], limits: ConnectionLimits, *, name: str
    ) -> None:
        self.inner = inner
        self.limits = limits
        self.registry: ConnectionRegistry[GuardedProtocol] = ConnectionRegistry(
            limits.max_connections, GuardedProtocol.evict, name=name
        )

    def __call__(self) -> GuardedProtocol:
        return GuardedProtocol(self.inner(), self)
