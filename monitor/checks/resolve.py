"""Name lookups for checks (:class:`Resolver`), kept off the event loop's shared default executor,
and a connection opened to what a name resolves to (:func:`open_connection`).

``loop.getaddrinfo`` runs in the loop's default executor (a handful of threads), and a deadline
cancels the await but never the thread: a name whose name server does not answer holds its
thread until the C library gives up (5 s × attempts × servers, often 10 to 30 s). A few such
checks would hold every thread, and every other check, health probe and webhook that looks up
a name would then time out. So a check's name is looked up here instead:

- in threads of its own (:data:`LOOKUP_THREADS`, named ``check-lookup``), never the default
  executor's;
- once at a time per name and port: runs of the same name at once share one lookup, and a
  lookup whose callers have all given up keeps only its own thread — a later run of that name
  fails at once (:data:`PENDING`) rather than start another, and a lookup still queued when its
  callers give up is dropped;
- answers are kept :data:`ANSWER_SECONDS`, failures :data:`FAILURE_SECONDS`; an answer older
  than that is still used, up to :data:`STALE_SECONDS`, while a fresh lookup runs behind it, so a
  name that resolved once never waits for a thread that stalled lookups of other names hold.

IP literals are used as they are, with no lookup.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from shared.resilience import Clock

LOOKUP_THREADS = 8
ANSWER_SECONDS = 30.0
FAILURE_SECONDS = 5.0
STALE_SECONDS = 300.0
"""How old an answer may be and still be used while a fresh lookup of it runs."""
MAX_CACHED = 4096
"""Names (with their ports) remembered at once; the oldest is forgotten first."""
MAX_ADDRESSES = 8
"""Addresses kept per answer (a hostile name server may send hundreds)."""
CONNECT_ATTEMPTS = 4
"""Addresses of a name tried in turn to connect (``::1`` refused, then ``127.0.0.1``)."""
NOT_RESOLVED = "name does not resolve"
PENDING = "name lookup still pending"

LookUp = Callable[[str, int], Sequence[str]]
"""A blocking lookup of a name's addresses (as text) for a port, run in a lookup thread; raises
``OSError`` (``socket.gaierror``) when the name does not resolve."""


def system_lookup(host: str, port: int) -> list[str]:
    """The operating system's resolver (``/etc/hosts`` included)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def elapsed_ms(clock: Clock, started: float) -> float:
    """Milliseconds since ``started`` on ``clock``'s monotonic time."""
    return (clock.monotonic() - started) * 1000.0


class Unresolved(OSError):
    """The name gave no address: :data:`NOT_RESOLVED`, or :data:`PENDING` (an earlier lookup of
    it has not ended). ``reason`` is what the check says."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class _Pending:
    future: Future[Sequence[str]]
    waiters: int = 0


@dataclass(frozen=True, slots=True)
class _Known:
    addresses: tuple[str, ...] | None
    """None: the lookup failed."""
    at: float


_Key = tuple[str, int]


class Resolver:
    """Looks names up for checks (see the module's docstring). Safe to share between event
    loops; :meth:`close` lets its threads go."""

    def __init__(
        self,
        *,
        lookup: LookUp = system_lookup,
        threads: int = LOOKUP_THREADS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._threads = threads
        self._monotonic = monotonic
        # Lookups end in their own threads: what they change is guarded (reentrant, as a
        # future that is already done runs its callback at once, in the caller's thread).
        self._lock = threading.RLock()
        self._executor: ThreadPoolExecutor | None = None
        self._known: dict[_Key, _Known] = {}
        self._pending: dict[_Key, _Pending] = {}

    async def addresses(self, host: str, port: int) -> tuple[str, ...]:
        """The addresses to connect to for ``host`` (``host`` itself when an IP literal).
        Raises :class:`Unresolved`."""
        literal = _literal(host)
        if literal is not None:
            return (literal,)
        key = (host.lower(), port)
        with self._lock:
            known = self._known.get(key)
            if known is not None:
                age = self._monotonic() - known.at
                if known.addresses is None:
                    if age < FAILURE_SECONDS:
                        raise Unresolved(NOT_RESOLVED)
                elif age < ANSWER_SECONDS:
                    return known.addresses
                elif age < STALE_SECONDS:
                    if key not in self._pending:
                        self._start(key)  # nobody waits for it: the answer in hand is used
                    return known.addresses
            pending = self._pending.get(key)
            if pending is None:
                pending = self._start(key)
            elif pending.waiters == 0:
                # Started by a run that has given up: it holds its thread until the C library
                # gives up, and another lookup of the same name would only hold one more.
                raise Unresolved(PENDING)
            pending.waiters += 1
        try:
            return await _awaited(pending.future)
        finally:
            with self._lock:
                pending.waiters -= 1
                # Still queued with nobody waiting: dropped before it takes a thread.
                if pending.waiters == 0 and pending.future.cancel():
                    self._forget(key, pending)

    def close(self) -> None:
        """Let the threads go (a lookup in progress ends on its own; none is waited for)."""
        with self._lock:
            executor, self._executor = self._executor, None
            self._pending.clear()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def _start(self, key: _Key) -> _Pending:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="check-lookup")
        future = self._executor.submit(self._lookup, *key)
        pending = _Pending(future)
        self._pending[key] = pending
        future.add_done_callback(functools.partial(self._finished, key, pending))
        return pending

    def _finished(self, key: _Key, pending: _Pending, future: Future[Sequence[str]]) -> None:
        with self._lock:
            self._forget(key, pending)
            if future.cancelled():
                return
            found: tuple[str, ...] | None = None
            if future.exception() is None:
                found = tuple(str(a) for a in future.result()[:MAX_ADDRESSES]) or None
            self._known.pop(key, None)
            self._known[key] = _Known(found, self._monotonic())
            if len(self._known) > MAX_CACHED:
                del self._known[next(iter(self._known))]

    def _forget(self, key: _Key, pending: _Pending) -> None:
        if self._pending.get(key) is pending:
            del self._pending[key]


async def _awaited(future: Future[Sequence[str]]) -> tuple[str, ...]:
    """The lookup's answer, awaited on this loop. Cancelling the await leaves the lookup alone
    (``asyncio.wrap_future`` would cancel it for every other run sharing it)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[str, ...]] = loop.create_future()

    def settle(ended: Future[Sequence[str]]) -> None:
        if done.done():
            return
        if ended.cancelled():
            done.set_exception(Unresolved(PENDING))
        elif ended.exception() is not None:
            done.set_exception(Unresolved(NOT_RESOLVED))
        else:
            found = tuple(str(a) for a in ended.result()[:MAX_ADDRESSES])
            if found:
                done.set_result(found)
            else:
                done.set_exception(Unresolved(NOT_RESOLVED))

    def ended(future: Future[Sequence[str]]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
            loop.call_soon_threadsafe(settle, future)

    future.add_done_callback(ended)
    return await done


def _literal(host: str) -> str | None:
    text = host.strip("[]")
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return None
    return text


_shared: Resolver | None = None
_shared_lock = threading.Lock()


def shared_resolver() -> Resolver:
    """The process's resolver for a :class:`~monitor.checks.context.RunContext` given none."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Resolver()
        return _shared


async def open_connection(
    resolver: Resolver, host: str, port: int, **options: Any
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection`` to ``host``'s addresses in turn (at most
    :data:`CONNECT_ATTEMPTS`), never looking the name up on the default executor. Raises
    :class:`Unresolved`, or the refusal if any address refused, else the first failure."""
    failures: list[OSError] = []
    for address in (await resolver.addresses(host, port))[:CONNECT_ATTEMPTS]:
        try:
            return await asyncio.open_connection(address, port, **options)
        except OSError as error:
            failures.append(error)
    refused = [f for f in failures if isinstance(f, ConnectionRefusedError)]
    raise (refused or failures)[0]
