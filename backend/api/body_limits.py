"""Request bodies bounded while they stream in, by route class (JSON, image uploads).

A pure ASGI middleware, so that no route can be handed more than its class allows, whether or not
it reads its body: a ``Content-Length`` over the limit is refused before a byte of the body is
read, and a chunked body is cut off at the first chunk that takes it past the limit. Either way
the answer is 413 with ``Connection: close``, so the server stops reading the rest.

A class with a large limit can also be given slots: that many of its requests run at once, the
others wait their turn before a byte of their body is read (the server holds at most a socket
buffer of each meanwhile), so memory is bounded by slots × limit, not by connections × limit.
The wait for a slot is bounded by what is left of the request budget: past it the answer is 503
with ``Retry-After`` ("uploads are busy"), never a wait without end behind slow uploads. The body
read in a slot is bounded by the server's body progress deadline (``connection_guard``): a body
that stops arriving is a 408 and frees its slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.errors import ApiError, error_response
from backend.storage.images import format_size
from shared.resilience import SYSTEM_CLOCK, Clock, remaining

SLOT_RETRY_AFTER = 5
"""Seconds a client refused an upload slot is told to wait (``Retry-After``)."""


@dataclass(frozen=True, slots=True)
class BodyAllowance:
    """``method`` on ``route`` takes bodies up to ``limit`` bytes; ``what`` names them for the
    413's message (``"Uploads"``). With ``slots``, only as many such requests as it has run at
    once (allowances may share one)."""

    method: str
    route: BaseRoute
    limit: int
    what: str
    slots: asyncio.Semaphore | None = None
    owner: Callable[[Scope], str | None] | None = None
    """Who a request's body belongs to (an account), if anyone: with slots, one such request per
    owner at a time, so one account cannot take every slot."""

    def applies_to(self, scope: Scope) -> bool:
        return scope["method"] == self.method and self.route.matches(scope)[0] is Match.FULL


class BodyTooLarge(ApiError):
    def __init__(self, what: str, limit: int) -> None:
        super().__init__(
            413,
            "payload_too_large",
            f"{what} are limited to {format_size(limit)}; send a smaller body.",
            headers={"Connection": "close"},
            extra={"limit_bytes": limit},
        )


class OwnerBusy(ApiError):
    def __init__(self, what: str) -> None:
        super().__init__(
            429,
            "too_many_requests",
            f"{what}: you already have one in progress, not finished in time for this one. "
            "Wait for it to finish, then retry.",
            headers={"Retry-After": str(SLOT_RETRY_AFTER), "Connection": "close"},
        )


class SlotsBusy(ApiError):
    def __init__(self, what: str) -> None:
        super().__init__(
            503,
            "uploads_busy",
            f"{what} are busy: every upload slot is taken. Retry in a few seconds.",
            headers={"Retry-After": str(SLOT_RETRY_AFTER), "Connection": "close"},
        )


@contextlib.asynccontextmanager
async def _slot(slots: asyncio.Semaphore | None, what: str, clock: Clock) -> AsyncIterator[None]:
    """One of ``slots``, waited for no longer than what is left of the request's budget."""
    if slots is None:
        yield
        return
    left = remaining(clock)
    try:
        # The deadline is a point on the policies' clock; in production that is the monotonic
        # clock asyncio's timeouts run on too.
        async with asyncio.timeout(left):
            await slots.acquire()
    except TimeoutError:
        raise SlotsBusy(what) from None
    try:
        yield
    finally:
        slots.release()


class BodyLimitMiddleware:
    """Every request body within ``default`` bytes (``"JSON bodies"``) unless an allowance names
    its method and route."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: int,
        allowances: Sequence[BodyAllowance] = (),
        default_what: str = "JSON bodies",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.app = app
        self.clock = clock
        self.default = default
        self.default_what = default_what
        self.allowances = tuple(allowances)
        self._owners: dict[str, tuple[asyncio.Lock, int]] = {}
        """Per owner with a slotted request in progress or waiting: its turn, and how many."""

    @contextlib.asynccontextmanager
    async def _owner_turn(self, owner: str | None, what: str) -> AsyncIterator[None]:
        """``owner``'s turn (one request at a time each), waited for no longer than what is left
        of the request's budget: the account's earlier request must finish first, so that one
        account cannot take every slot."""
        if owner is None:
            yield
            return
        turn, count = self._owners.get(owner, (asyncio.Lock(), 0))
        self._owners[owner] = (turn, count + 1)
        try:
            try:
                async with asyncio.timeout(remaining(self.clock)):
                    await turn.acquire()
            except TimeoutError:
                raise OwnerBusy(what) from None
            try:
                yield
            finally:
                turn.release()
        finally:
            turn, count = self._owners[owner]
            if count == 1:
                del self._owners[owner]
            else:
                self._owners[owner] = (turn, count - 1)

    def _allowance(self, scope: Scope) -> BodyAllowance | None:
        for allowance in self.allowances:
            if allowance.applies_to(scope):
                return allowance
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowance = self._allowance(scope)
        what, limit, slots = (
            (allowance.what, allowance.limit, allowance.slots)
            if allowance is not None
            else (self.default_what, self.default, None)
        )
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            refusal = BodyTooLarge(what, limit)
            response = error_response(
                refusal.status,
                refusal.code,
                refusal.message,
                headers=refusal.headers,
                extra=refusal.extra,
            )
            await response(scope, receive, send)
            return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(what, limit)
            return message

        owner = (
            allowance.owner(scope)
            if allowance is not None and allowance.owner is not None and slots is not None
            else None
        )
        try:
            async with self._owner_turn(owner, what), _slot(slots, what, self.clock):
                await self.app(scope, bounded_receive, send)
        except ClientDisconnect:
            # The client went away (or its body stalled and the server closed it) while its body
            # was read: no one to answer, and nothing wrong with the server to log.
            return
        except (SlotsBusy, OwnerBusy) as busy:
            response = error_response(busy.status, busy.code, busy.message, headers=busy.headers)
            await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            # The HTTP parser has already refused a malformed length; a long one is just big
            # (and not converted: int() of thousands of digits is slow, past 4,300 an error).
            if not text.isdigit():
                return None
            return int(text) if len(text) <= 18 else 10**18
    return None
