"""Retry and breaker composed into one call: ``retry(breaker(timeout(call)))``.

As resilience4j's ``Decorators`` does, the policies stay apart and are put together here, in the
one order that is right: the retry outside (it repeats what failed), the breaker inside (it counts
each attempt and refuses while its dependency is down), the breaker's timeout around the call
itself. Both :meth:`Dependency.bind <shared.resilience.dependency.Dependency.bind>` and a
``@retry_with_backoff`` stacked over ``@circuit_breaker`` use :func:`call_path`::

    path = call_path(retry=policy, breaker=breaker)
    rows = await path(fetch_rows, query)

    fetch = compose(fetch_rows, retry=policy, breaker=breaker)
    rows = await fetch(query)

Nested naively, a successful call runs through five coroutine frames of the two policies and is
watched twice (the retry's deadline, the breaker's timeout).
When the breaker's ``timeout`` ends every attempt before the retry's deadline (and the retry has
no ``attempt_timeout`` of its own), the retry need not watch the first attempt at all: the first
attempt then runs in the breaker's own frame (:meth:`CircuitBreaker.call_path`) and only a failure
is handed to the retry, which makes the later attempts through ``breaker.call``. Otherwise the
retry runs around ``breaker.call`` as usual. Both give the same outcomes; the first is as cheap as
the breaker alone (``benchmarks/policy_overhead.py``).

The breaker and the retry policy must read the same clock (one registry makes both).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from shared.resilience.circuit_breaker import BreakerCall, CircuitBreaker, CircuitBreakerConfig
from shared.resilience.retry import RetryConfig, RetryPolicy

P = ParamSpec("P")
T = TypeVar("T")


def call_path(
    *, retry: RetryPolicy | None = None, breaker: CircuitBreaker | None = None
) -> BreakerCall:
    """``await path(fn, *args, **kwargs)`` runs ``fn`` as ``retry(breaker(timeout(fn)))``; either
    policy may be left out."""
    if breaker is None:
        return retry.call if retry is not None else _direct
    if retry is None:
        return breaker.call
    breaker_call = breaker.call
    if fusable(breaker.config, retry.config):

        def retry_after(
            fn: Callable[..., Awaitable[T]],
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
            error: Exception,
            started: float | None,
        ) -> Coroutine[Any, Any, T]:
            return retry.retry_after_failure(breaker_call, (fn, *args), kwargs, error, started)

        return breaker.call_path(on_failure=retry_after, count=retry.budget)

    async def layered(fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await retry.call(breaker_call, fn, *args, **kwargs)

    return layered


def compose(
    fn: Callable[P, Awaitable[T]],
    /,
    *,
    retry: RetryPolicy | None = None,
    breaker: CircuitBreaker | None = None,
) -> Callable[P, Coroutine[Any, Any, T]]:
    """``fn`` with ``retry(breaker(timeout(…)))`` around it, keeping its signature."""
    path = call_path(retry=retry, breaker=breaker)

    @functools.wraps(fn)
    async def composed(*args: P.args, **kwargs: P.kwargs) -> T:
        return await path(fn, *args, **kwargs)

    return composed


def fusable(breaker: CircuitBreakerConfig, retry: RetryConfig) -> bool:
    """True when the breaker's timeout ends every attempt no later than the retry would, so the
    retry need not watch the first one (see the module's docstring)."""
    bound = breaker.timeout
    return (
        bound is not None
        and retry.attempt_timeout is None
        and (retry.timeout is None or bound <= retry.timeout)
    )


async def _direct(fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
    return await fn(*args, **kwargs)
