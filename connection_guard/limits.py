"""The policy: what a server may hold, and which connection gives way when it is full.

Standard library only. The protocols in this package call :class:`ConnectionRegistry` on four
events (made, waiting for a request, busy with one, lost); the registry decides admission and
eviction, so that policy is tested without sockets.
"""

from __future__ import annotations

import logging
import math
import resource
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

logger = logging.getLogger("connection_guard")

RESERVED_FILES = 256
"""File descriptors kept out of the connection cap (a quarter of the limit when that is less): the
database pool, S3 connections, log files, the store, child processes' pipes. A cap above what is
left of ``RLIMIT_NOFILE`` is lowered."""

LOG_EVERY = 60.0
"""Seconds between two warnings about a full server: a flood must not become a flood of logs."""


class LimitsError(ValueError):
    """A limit has a value no server can use."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    """Seconds a connection may take to send a request's headers, from its first awaited byte;
    also the longest a request body may go without a byte while the server reads it, and a
    response without a byte taken by the client (the progress deadlines)."""
    keepalive_timeout: int = 5
    """Seconds an idle kept-alive connection stays open."""
    max_connections: int = 1024
    """Connections held at once; beyond it the oldest waiting one is evicted, or the new one
    refused with a 503 when every held connection is busy."""

    def __post_init__(self) -> None:
        if not (self.header_timeout > 0 and math.isfinite(self.header_timeout)):
            raise LimitsError(
                f"header timeout {self.header_timeout!r}: must be a number of seconds above 0"
            )
        if self.keepalive_timeout < 1:
            raise LimitsError(f"keep-alive timeout {self.keepalive_timeout!r}: must be 1 or more")
        if self.max_connections < 1:
            raise LimitsError(f"connection cap {self.max_connections!r}: must be 1 or more")

    def within_open_files(self, soft_limit: int) -> ConnectionLimits:
        """These limits with the cap lowered, if need be, to leave :data:`RESERVED_FILES` of the
        process's ``soft_limit`` open files for everything that is not a client connection."""
        reserved = min(RESERVED_FILES, soft_limit // 4)
        room = max(1, soft_limit - reserved)
        if self.max_connections <= room:
            return self
        logger.warning(
            "connection cap lowered from %d to %d: the process may open %d files and keeps %d "
            "for its own work (raise the hard limit, e.g. ulimit -Hn, to allow more)",
            self.max_connections,
            room,
            soft_limit,
            reserved,
            extra={"event": "connection_cap_lowered", "cap": room},
        )
        return ConnectionLimits(self.header_timeout, self.keepalive_timeout, room)


def raise_open_files_limit() -> int:
    """Raise this process's soft ``RLIMIT_NOFILE`` to its hard limit (any process may); return
    the soft limit now in force. A server under a connection flood needs the descriptors, and
    the usual soft default (1024) is far below the usual hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else target
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):  # a kernel ceiling (nr_open) below the hard limit
        return soft
    return target


C = TypeVar("C", bound=Hashable)


class ConnectionRegistry(Generic[C]):
    """The connections one server holds, in the order they started waiting.

    A connection is *waiting* from when it is made, and again after each response, until the
    headers of its next request are complete, and while the server waits for the body of a
    request (each chunk moves it to the back of the line); otherwise it is *busy*. Waiting
    connections cost the server little but their descriptor, so when the cap is reached the
    one that has waited longest is evicted to admit the new one; a real client's connection
    waits for milliseconds, an attacker's for as long as it can. Only when every held
    connection is busy is the new one refused.
    """

    def __init__(
        self,
        cap: int,
        evict: Callable[[C], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "server",
    ) -> None:
        self.cap = cap
        self._evict = evict
        self._clock = clock
        self._name = name
        self._held: set[C] = set()
        self._waiting: dict[C, None] = {}  # insertion-ordered: oldest first
        self.evicted = 0
        self.refused = 0
        self._logged_at: float | None = None

    def __len__(self) -> int:
        return len(self._held)

    @property
    def waiting_count(self) -> int:
        return len(self._waiting)

    def admit(self, connection: C) -> bool:
        """Hold ``connection`` (waiting) if there is room or a waiting one to evict."""
        if len(self._held) >= self.cap:
            if not self._waiting:
                self.refused += 1
                self._report()
                return False
            oldest = next(iter(self._waiting))
            self.release(oldest)
            self.evicted += 1
            self._report()
            self._evict(oldest)
        self._held.add(connection)
        self._waiting[connection] = None
        return True

    def waiting(self, connection: C) -> None:
        if connection in self._held:
            self._waiting.pop(connection, None)
            self._waiting[connection] = None  # to the end: it starts waiting now

    def busy(self, connection: C) -> None:
        self._waiting.pop(connection, None)

    def release(self, connection: C) -> None:
        self._held.discard(connection)
        self._waiting.pop(connection, None)

    def _report(self) -> None:
        now = self._clock()
        if self._logged_at is not None and now - self._logged_at < LOG_EVERY:
            return
        self._logged_at = now
        logger.warning(
            "%s holds its cap of %d connections: %d waiting ones evicted and %d new ones "
            "refused so far (a flood of idle connections, or raise the cap)",
            self._name,
            self.cap,
            self.evicted,
            self.refused,
            extra={
                "event": "connection_cap_reached",
                "cap": self.cap,
                "evicted": self.evicted,
                "refused": self.refused,
            },
        )


REFUSAL_BODY = "Too many connections: this server holds at most {cap}. Try again shortly.\n"


def refusal(cap: int) -> bytes:
    """The whole HTTP/1.1 answer written to a refused connection before it is closed."""
    body = REFUSAL_BODY.format(cap=cap).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


_TIMEOUT_BODY = b"The request headers did not arrive in time. Retry.\n"
REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)
"""Written to a connection that sent part of a request's headers but not all in time."""

_BODY_TIMEOUT_BODY = b"The request body stopped arriving: no byte came in time. Retry.\n"
BODY_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_BODY_TIMEOUT_BODY), _BODY_TIMEOUT_BODY)
)
"""Written to a connection whose request body stalled before any answer was started."""
