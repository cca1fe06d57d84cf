"""Decorator forms: ``@retry_with_backoff(cfg)`` and ``@circuit_breaker(name, cfg)``.

Typed with ParamSpec, so a decorated function keeps its signature for mypy.

Without a ``registry`` argument a decorated function follows the process's default registry
(:mod:`shared.resilience.defaults`): decorated at import time, it calls through the running
backend's breaker of its name once the backend has installed its registry, and through the
process's own again after. It checks on every call (one global load) and rebinds only when the
default changed. Its ``circuit_breaker`` and ``retry_policy`` attributes name what it calls through
now. When the new default registry already holds a breaker of the same name with another
configuration (code written as the seed shows it, ``@circuit_breaker("database",
DATABASE_CIRCUIT_BREAKER_CONFIG)``, inside a backend whose database breaker has its own timeout),
calls go through that breaker and a warning says once that the decorator's configuration is not
the one in force (:meth:`PolicyRegistry.breaker_in_force`): one breaker per name, and a call that
raised instead would fail in production over a line of configuration. The same holds when the
function is decorated while such a registry is installed. Only with an explicit ``registry=`` is
a clash an error, at decoration time.

``@retry_with_backoff`` directly over ``@circuit_breaker`` is not nested: the pair becomes one
:func:`~shared.resilience.compose.call_path`, ``retry(breaker(timeout(call)))``, as cheap as
``Dependency.call`` and with the same outcomes as the nested form.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from shared.resilience import registry as _registry
from shared.resilience.circuit_breaker import BreakerCall, CircuitBreaker, CircuitBreakerConfig
from shared.resilience.compose import call_path
from shared.resilience.registry import PolicyRegistry, default_registry
from shared.resilience.retry import RetryConfig, RetryPolicy

P = ParamSpec("P")
T = TypeVar("T")

BreakerSource = Callable[[PolicyRegistry], CircuitBreaker]
RetrySource = Callable[[PolicyRegistry], RetryPolicy]


class PolicyBinding:
    """The call path a decorated function runs through, made from a registry: the one given to
    the decorator (``follows`` False), or the process's default of the moment (``follows`` True).
    """

    __slots__ = (
        "breaker",
        "breaker_of",
        "fn",
        "follows",
        "path",
        "registry",
        "retry_of",
        "retry_policy",
        "wrapper",
    )

    def __init__(
        self,
        fn: Callable[..., Awaitable[Any]],
        registry: PolicyRegistry | None,
        *,
        breaker_of: BreakerSource | None = None,
        retry_of: RetrySource | None = None,
    ) -> None:
        self.fn = fn
        """The undecorated function: what the path calls."""
        self.follows = registry is None
        self.breaker_of = breaker_of
        self.retry_of = retry_of
        self.wrapper: Callable[..., Any] | None = None
        self.breaker: CircuitBreaker | None = None
        self.retry_policy: RetryPolicy | None = None
        self.path: BreakerCall
        self.registry: PolicyRegistry
        self.bind(registry if registry is not None else default_registry())

    def bind(self, registry: PolicyRegistry) -> None:
        breaker = self.breaker_of(registry) if self.breaker_of is not None else None
        policy = self.retry_of(registry) if self.retry_of is not None else None
        self.path = call_path(retry=policy, breaker=breaker)
        self.breaker, self.retry_policy, self.registry = breaker, policy, registry
        if self.wrapper is not None:
            self._label(self.wrapper)

    def follow(self) -> None:
        """Rebind to the process's default registry (it changed since the last call)."""
        self.bind(default_registry())

    def wrap(self, decorated: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        """The wrapper that replaces ``decorated`` (``fn`` itself, or a wrapper of it)."""
        fn: Callable[P, Awaitable[T]] = self.fn
        binding = self
        if self.follows:

            async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                if binding.registry is not _registry.active:
                    binding.follow()
                return await binding.path(fn, *args, **kwargs)

        else:
            path = self.path

            async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                return await path(fn, *args, **kwargs)

        functools.update_wrapper(wrapper, decorated)
        self.wrapper = wrapper
        self._label(wrapper)
        return wrapper

    def _label(self, wrapper: Callable[..., Any]) -> None:
        attributes = vars(wrapper)
        attributes["policy_binding"] = self
        attributes.pop("circuit_breaker", None)
        attributes.pop("retry_policy", None)
        if self.breaker is not None:
            attributes["circuit_breaker"] = self.breaker
        if self.retry_policy is not None:
            attributes["retry_policy"] = self.retry_policy


def _binding_of(fn: Callable[..., Any]) -> PolicyBinding | None:
    """The binding ``fn`` is the wrapper of (not one copied onto another decorator's wrapper by
    ``functools.wraps``)."""
    binding = getattr(fn, "policy_binding", None)
    if isinstance(binding, PolicyBinding) and binding.wrapper is fn:
        return binding
    return None


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

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        policy_name = name or cfg.name or str(getattr(fn, "__qualname__", repr(fn)))

        def retry_of(reg: PolicyRegistry) -> RetryPolicy:
            return reg.retry_policy(policy_name, cfg, rng=rng)

        inner = _binding_of(fn)
        if (
            inner is not None
            and inner.retry_of is None
            and inner.follows == (registry is None)
            and (registry is None or inner.registry is registry)
        ):
            # Directly over @circuit_breaker on the same registry: one path, not two layers.
            binding = PolicyBinding(
                inner.fn, registry, breaker_of=inner.breaker_of, retry_of=retry_of
            )
        else:
            binding = PolicyBinding(fn, registry, retry_of=retry_of)
        return binding.wrap(fn)

    return decorate


def circuit_breaker(
    name: str,
    config: CircuitBreakerConfig | None = None,
    *,
    registry: PolicyRegistry | None = None,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Send the decorated coroutine function's calls through the breaker called ``name``."""

    def strict(reg: PolicyRegistry) -> CircuitBreaker:
        return reg.circuit_breaker(name, config)

    def following(reg: PolicyRegistry) -> CircuitBreaker:
        return reg.breaker_in_force(name, config)

    # Given a registry, a configuration clash is an error, at once. Following the process's
    # default, the breaker in force wins, with a warning (PolicyRegistry.breaker_in_force).
    breaker_of = strict if registry is not None else following
    breaker_of(registry if registry is not None else default_registry())

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        return PolicyBinding(fn, registry, breaker_of=breaker_of).wrap(fn)

    return decorate
