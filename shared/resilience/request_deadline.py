"""The deadline of the request being served, carried to every policy it calls.

A request has a budget (``QUESTCITY_REQUEST_TIMEOUT`` in the backend): no request should wait
longer than that for its dependencies, whatever the policies it meets would allow on their own
(the seed's S3 retry deadline is 60 s). As gRPC and Finagle do, the deadline is set once where the
request enters and travels with it: here in a :class:`~contextvars.ContextVar`, so every breaker
and retry policy running in the request's task (and in tasks it starts for itself) sees it::

    with request_deadline(10.0, clock=clock):   # where the request enters
        ...                                      # every call inside runs within what is left

Inside a deadline a retry's overall deadline is the earlier of its own and the request's, a wait
that would reach it is not taken, each attempt and each breaker call is cut to what is left, and a
call that finds the budget spent is not started (:class:`RequestDeadlineError`). Outside any
request (health checks, start-up, the monitor) nothing changes: policies keep their own deadlines.
Background work a request starts is not part of it: :func:`detached_context` is the context such
a task should run in (:class:`~shared.resilience.background.BackgroundTasks` uses it).

The deadline is a point on a monotonic clock: the clock passed here must be the one the policies
read (one clock per process, given to both by the composition root). Reading it is one
``ContextVar.get()``; there is no timer per request or per call.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Iterator
from contextlib import contextmanager

from shared.resilience.clock import SYSTEM_CLOCK, Clock

_DEADLINE: contextvars.ContextVar[float] = contextvars.ContextVar(
    "shared.resilience.request_deadline", default=math.inf
)

current_deadline = _DEADLINE.get
"""The current request's deadline on the policies' clock, ``math.inf`` outside any request."""


@contextmanager
def request_deadline(
    seconds: float, *, clock: Clock = SYSTEM_CLOCK, restart: bool = False
) -> Iterator[float]:
    """Run the block within ``seconds`` from now; yields the deadline (a point on ``clock``).

    Nested scopes never extend a deadline: the earlier of the enclosing one and this one holds.
    With ``restart`` the block gets a new budget of its own instead, replacing the enclosing one
    until it ends: for the part of a request that starts only once the client has done its share
    (an upload's store and database calls, once its body has arrived), so that a slow client does
    not spend the budget of the dependencies it then calls.
    """
    if not seconds > 0:
        raise ValueError(f"request_deadline: seconds must be > 0, got {seconds!r}")
    ours = clock.monotonic() + seconds
    deadline = ours if restart else min(_DEADLINE.get(), ours)
    token = _DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        _DEADLINE.reset(token)


def remaining(clock: Clock = SYSTEM_CLOCK) -> float | None:
    """Seconds left of the current request's budget (0.0 once spent); None outside any request."""
    deadline = _DEADLINE.get()
    if deadline == math.inf:
        return None
    return max(deadline - clock.monotonic(), 0.0)


@contextmanager
def no_request_deadline() -> Iterator[None]:
    """Run the block as background work: without the enclosing request's deadline."""
    token = _DEADLINE.set(math.inf)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def detached_context() -> contextvars.Context:
    """A copy of the current context without a request deadline, for a task that outlives the
    request that starts it (``loop.create_task(work, context=detached_context())``)."""
    context = contextvars.copy_context()
    context.run(_DEADLINE.set, math.inf)
    return context
