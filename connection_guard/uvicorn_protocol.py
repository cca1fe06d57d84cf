"""uvicorn's h11 protocol with a header deadline and a connection cap (:mod:`connection_guard`).

uvicorn has a keep-alive timeout but no bound on how long a connection may take to send its
request headers, and its ``limit_concurrency`` answers 503 to *every* request once that many
connections are open, idle ones included, so a flood of idle sockets would still take ``/live``
down. :func:`guarded_h11` makes a protocol class for one server (``uvicorn.Config(http=...)``):

- the header deadline is armed when a connection is made, and at the first byte of each later
  request on a kept-alive connection (the idle time before it is uvicorn's keep-alive timeout);
  it is disarmed once h11 has the request's headers. On expiry the connection is closed, with a
  408 if part of a request had arrived;
- the connection cap is :class:`~connection_guard.limits.ConnectionRegistry`'s.

The class is h11's, whatever uvicorn's ``auto`` would pick: httptools is not installed here, and
the deadline reads h11's connection state.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from connection_guard.limits import (
    REQUEST_TIMEOUT,
    ConnectionLimits,
    ConnectionRegistry,
    refusal,
)


class GuardedH11Protocol(H11Protocol):
    limits: ClassVar[ConnectionLimits]
    registry: ClassVar[ConnectionRegistry[GuardedH11Protocol]]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False
        self._waiting = True
        self._partial = False
        """Part of the awaited request's headers has arrived."""

    @classmethod
    def describe(cls) -> str:
        """What a benchmark compares to know two servers are guarded alike."""
        return f"{GuardedH11Protocol.__module__}.GuardedH11Protocol({cls.limits})"

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if not self.registry.admit(self):
            self._refused = True
            self.transport = transport
            transport.write(refusal(self.registry.cap))
            transport.close()
            return
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self.transport.get_protocol() is not self:  # upgraded to a websocket: not ours now
            self._forget()
            return
        self._partial = True
        self._follow_state()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._partial = False
        self._follow_state()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._forget()
        super().connection_lost(exc)

    def evict(self) -> None:
        """Closed to make room for a new connection (the cap is reached, this one only waits)."""
        self._disarm()
        if not self.transport.is_closing():
            self.transport.close()

    # -- the deadline ---------------------------------------------------------------------------

    def _follow_state(self) -> None:
        """After h11 has seen new bytes or a response has gone out: waiting for the next
        request's headers, or busy with a request."""
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE:
            if not self._waiting:
                self._waiting = True
                self.registry.waiting(self)
            if self._partial and self._deadline is None:
                self._arm()
        else:
            self._waiting = False
            self._partial = False
            self.registry.busy(self)
            self._disarm()

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.limits.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._partial:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()

    def _forget(self) -> None:
        self._disarm()
        self.registry.release(self)


def guarded_h11(limits: ConnectionLimits, *, name: str = "server") -> type[GuardedH11Protocol]:
    """A protocol class for one server: ``limits``, and a registry of its own connections."""

    class Guarded(GuardedH11Protocol):
        pass

    Guarded.limits = limits
    Guarded.registry = ConnectionRegistry(
        limits.max_connections, GuardedH11Protocol.evict, name=name
    )
    Guarded.__name__ = Guarded.__qualname__ = f"GuardedH11Protocol[{name}]"
    return Guarded


def uvicorn_options(limits: ConnectionLimits, *, name: str) -> dict[str, Any]:
    """The ``uvicorn.Config`` keywords that put ``limits`` on a server.

    The listen backlog is also how many connections asyncio accepts in one go; kept at half the
    cap, one burst of a flood cannot evict a connection accepted just before it, whose request
    is read in the next turn of the loop (with uvicorn's 2048 and a cap of 1024, a /live probe
    was now and then closed unanswered). Beyond the backlog the kernel holds new connections
    back, and their clients retry the handshake."""
    return {
        "http": guarded_h11(limits, name=name),
        "timeout_keep_alive": limits.keepalive_timeout,
        "backlog": max(16, min(2048, limits.max_connections // 2)),
    }
