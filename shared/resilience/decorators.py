"""Decorator forms: ``@retry_with_backoff(cfg)`` and ``@circuit_breaker(name, cfg)``.

Typed with ParamSpec, so a decorated function keeps its signature for mypy.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from shared.resilience.circuit_breaker import CircuitBreakerConfig
from shared.resilience.registry import PolicyRegistry, default_registry
from shared.resilience.retry import RetryConfig

P = ParamSpec("P")
T = TypeVar("T")


def retry_with_backoff(
    config: RetryConfig | None = None,
    *,
    name: str | None = None,
    rng: random.Random | None = None,
    registry: PolicyRegistry | None = None,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Retry the decorated coroutine function's retryable failures with backoff and jitter.

    The policy's name (logs, metrics, budget) is ``name``, else ``config.name``, else the function's
    qualified name.
    """
    cfg = config if config is not None else RetryConfig()
    reg = registry if registry is not None else default_registry()

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        policy_name = name or cfg.name or str(getattr(fn, "__qualname__", repr(fn)))
        policy = reg.retry_policy(policy_name, cfg, rng=rng)

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return await policy.call(fn, *args, **kwargs)

        wrapper.retry_policy = policy  # type: ignore[attr-defined]
        return wrapper

    return decorate


def circuit_breaker(
    name: str,
    config: CircuitBreakerConfig | None = None,
    *,
    registry: PolicyRegistry | None = None,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Send the decorated coroutine function's calls through the breaker called ``name``."""
    breaker = (registry if registry is not None else default_registry()).circuit_breaker(
        name, config
    )

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return await breaker.call(fn, *args, **kwargs)

        wrapper.circuit_breaker = breaker  # type: ignore[attr-defined]
        return wrapper

    return decorate
