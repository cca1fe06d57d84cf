"""The request budget (``QUESTCITY_REQUEST_TIMEOUT``, ARCHITECTURE §4): a deadline set where a
request enters, which every policy the request meets honours
(:mod:`shared.resilience.request_deadline`).

A plain ASGI middleware, outermost, so the budget counts from the request's arrival. The
dependencies get the budget less :data:`ANSWER_RESERVE`: the time to notice the deadline (the
policies' deadline watch wakes at least every 50 ms) and to write the 503, so that the client has
its answer within the budget, not just after it. It arms no timer: the deadline is a value in a
context variable, read by the breakers, retries and the pool gate on their way. A dependency call
the deadline cuts short raises :class:`~shared.resilience.RequestDeadlineError` (a
``TimeoutError``), which the routes already answer as 503 with ``Retry-After`` naming the service;
:func:`backend.api.errors.budget_spent_handler` answers it the same way wherever a route did not.
Lifespan and WebSocket scopes get no deadline.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.resilience import SYSTEM_CLOCK, Clock, request_deadline

ANSWER_RESERVE = 0.1
"""Seconds of the budget kept back for answering (a tenth of the budget when that is less)."""


class RequestBudgetMiddleware:
    def __init__(self, app: ASGIApp, *, seconds: float, clock: Clock = SYSTEM_CLOCK) -> None:
        if not seconds > 0:
            raise ValueError(f"RequestBudgetMiddleware: seconds must be > 0, got {seconds!r}")
        self.app = app
        self.seconds = seconds
        self.clock = clock
        self.for_dependencies = for_dependencies(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with request_deadline(self.for_dependencies, clock=self.clock):
            await self.app(scope, receive, send)


def for_dependencies(seconds: float) -> float:
    """What of a budget of ``seconds`` the dependencies get (the rest is for answering)."""
    return seconds - min(ANSWER_RESERVE, seconds / 10)


def budget_from_now(seconds: float, *, clock: Clock) -> AbstractContextManager[float]:
    """The dependencies' budget again, counted from now, for the block: the work of an upload
    once its body has arrived. The client's own sending time is not the dependencies' to pay for
    (a slow phone would otherwise reach S3 with nothing left, and its 503 blame S3); a body too
    slow overall is the server's body progress deadline's to end, with a 408."""
    return request_deadline(for_dependencies(seconds), clock=clock, restart=True)
