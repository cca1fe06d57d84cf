"""uvicorn's h11 protocol with a header deadline and a connection cap (:mod:`connection_guard`).

uvicorn has a keep-alive timeout but no bound on how long a connection may take to send its
request headers, and its ``limit_concurrency`` answers 503 to *every* request once that many
connections are open, idle ones included, so a flood of idle sockets would still take ``/live``
down. :func:`guarded_h11` makes a protocol class for one server (``uvicorn.Config(http=...)``):

- the header deadline is armed when a connection is made, and at the first byte of each later
  request on a kept-alive connection (the idle time before it is uvicorn's keep-alive timeout);
  it is disarmed once h11 has the request's headers. On expiry the connection is closed, with a
  408 if part of a request had arrived;
- while the request's body is awaited, the same timeout is a *progress* deadline, re-armed by
  each chunk: a body that stops arriving is answered 408 (if no answer was started) and closed.
  It does not run while the app leaves the body unread (reading paused by flow control, or a
  ``100 Continue`` not yet sent): that wait is the app's, not the client's. A connection in its
  body counts as *waiting* for the cap, so a flood of stalled bodies is evicted like idle ones;
- an answer sent before the whole body came (a route that does not read it, an early error)
  closes the connection instead of keeping it alive: otherwise a client could hold it for ever
  by owing the rest of a body nobody reads;
- a response the client does not take (writes paused by the transport's flow control) for the
  timeout aborts the connection;
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
    BODY_TIMEOUT,
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
        self._write_deadline: asyncio.TimerHandle | None = None
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
        self._follow_state(progress=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._partial = False
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            # Answered before the body came whole: the rest is owed to nobody, and keeping the
            # connection alive would let the client hold it by never finishing.
            self._disarm()
            self.transport.close()
            return
        self._follow_state()

    def pause_writing(self) -> None:
        if self._refused:
            return
        super().pause_writing()
        if self._write_deadline is None:
            self._write_deadline = self.loop.call_later(
                self.limits.header_timeout, self._write_stalled
            )

    def resume_writing(self) -> None:
        if self._refused:
            return
        super().resume_writing()
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None

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

    def _follow_state(self, *, progress: bool = False) -> None:
        """After h11 has seen new bytes (``progress``) or a response has gone out: waiting for
        the next request's headers, owing the body of one, or busy with a request."""
        if self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            if not self._waiting:
                self._waiting = True
                self.registry.waiting(self)
            if self._partial and self._deadline is None:
                self._arm()
        elif state is h11.SEND_BODY:
            self._waiting = False
            if progress or self._deadline is None:
                self._disarm()
                self._arm()
            if self.flow.read_paused:  # the app has not taken what came: its wait, not theirs
                self.registry.busy(self)
            else:
                self.registry.waiting(self)  # to the end of the line: it just made progress
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
        if self.conn.their_state is h11.SEND_BODY:
            if self.flow.read_paused or self.conn.they_are_waiting_for_100_continue:
                self._arm()  # the app has not asked for the body yet: the client is not late
                return
            if self.conn.our_state is h11.SEND_RESPONSE:  # no answer started: say why
                self.transport.write(BODY_TIMEOUT)
            self.transport.close()
            return
        if self._partial:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()

    def _write_stalled(self) -> None:
        """The client has taken none of the answer for the timeout: it is not reading."""
        self._write_deadline = None
        if not self.transport.is_closing():
            self.transport.abort()

    def _forget(self) -> None:
        self._disarm()
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None
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
