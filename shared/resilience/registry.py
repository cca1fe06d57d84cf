"""Breakers and retry budgets by name, so every caller of "database" shares one of each.

A process has one :func:`default_registry`; tests and embedders make their own
:class:`PolicyRegistry` (with a fake clock) and pass it in. An application installs its registry as
the process's default while it runs (:func:`shared.resilience.defaults.as_process_defaults`), so
that :func:`get_circuit_breaker` and the decorators reach its breakers.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator

from shared.resilience.budget import RetryBudget, RetryBudgetConfig
from shared.resilience.circuit_breaker import CircuitBreaker, CircuitBreakerConfig
from shared.resilience.clock import SYSTEM_CLOCK, Clock
from shared.resilience.retry import RetryConfig, RetryPolicy

logger = logging.getLogger("shared.resilience.circuit_breaker")


class PolicyRegistry:
    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}
        self._budgets: dict[str, RetryBudget] = {}
        self._warned: set[str] = set()

    def circuit_breaker(
        self, name: str, config: CircuitBreakerConfig | None = None
    ) -> CircuitBreaker:
        """The breaker called ``name``, made on first use.

        Asking again with a different config is an error rather than a silent second opinion.
        """
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = CircuitBreaker(name, config, clock=self.clock)
            self._breakers[name] = breaker
        elif config is not None and config != breaker.config:
            raise ValueError(
                f"circuit breaker {name!r} already exists with another configuration; "
                "use one CircuitBreakerConfig per name"
            )
        return breaker

    def retry_budget(self, name: str, config: RetryBudgetConfig) -> RetryBudget:
        budget = self._budgets.get(name)
        if budget is None:
            budget = RetryBudget(config, self.clock)
            self._budgets[name] = budget
        elif budget.config != config:
            raise ValueError(
                f"retry budget {name!r} already exists with another configuration; "
                "use one RetryBudgetConfig per policy name"
            )
        return budget

    def retry_policy(
        self, name: str, config: RetryConfig, *, rng: random.Random | None = None
    ) -> RetryPolicy:
        """A retry policy called ``name`` whose budget (if configured) is shared under that name."""
        budget = self.retry_budget(name, config.budget) if config.budget is not None else None
        return RetryPolicy(config, name=name, clock=self.clock, budget=budget, rng=rng)

    def find_circuit_breaker(self, name: str) -> CircuitBreaker | None:
        return self._breakers.get(name)

    def breaker_in_force(
        self, name: str, config: CircuitBreakerConfig | None = None
    ) -> CircuitBreaker:
        """The breaker called ``name`` as the seed's accessors ask for it: made with ``config`` on
        first use; if it exists with another configuration, that one (the configuration in
        force, e.g. a running backend's) with a warning, once per name, instead of an error.

        The accessors are called from code written against the seed, often at import time and
        before a backend installs its registry; raising there would fail every call in
        production over a line of configuration, and a second breaker would not protect anything.
        """
        breaker = self._breakers.get(name)
        if breaker is None or config is None or config == breaker.config:
            return self.circuit_breaker(name, config)
        if name not in self._warned:
            self._warned.add(name)
            logger.warning(
                "circuit breaker %r already exists with another configuration; calls go through "
                "it and the configuration asked for is not used",
                name,
                extra={"event": "breaker_config_ignored", "breaker": name},
            )
        return breaker

    def circuit_breakers(self) -> Iterator[CircuitBreaker]:
        return iter(list(self._breakers.values()))

    def retry_budgets(self) -> Iterator[tuple[str, RetryBudget]]:
        return iter(list(self._budgets.items()))


_own: PolicyRegistry | None = None
_installed: list[tuple[object, PolicyRegistry]] = []
_installing = threading.Lock()
"""Apps may start and stop from several threads (one event loop each, e.g. test servers):
installing and withdrawing must not lose each other's entries. Readers take no lock."""

active: PolicyRegistry | None = None
"""What :func:`default_registry` returns (None until first needed). Read, never assigned, by
code that follows the default on every call (the decorators): one global load, no call."""


def default_registry() -> PolicyRegistry:
    """The process's registry: the one installed last by :func:`install_default_registry` and not
    yet withdrawn (a running backend's), else the process's own, made on first use."""
    global _own, active
    if active is None:
        _own = PolicyRegistry()
        active = _own
    return active


def install_default_registry(registry: PolicyRegistry) -> Callable[[], None]:
    """Make ``registry`` the process's default until the returned function is called.

    Installations stack: while several are in place the latest one is the default, and
    withdrawing one (in any order) leaves the latest of the others, or the process's own.
    """
    token = object()
    with _installing:
        _installed.append((token, registry))
        _refresh()

    def withdraw() -> None:
        with _installing:
            _installed[:] = [entry for entry in _installed if entry[0] is not token]
            _refresh()

    return withdraw


def _refresh() -> None:
    global active
    active = _installed[-1][1] if _installed else _own


def get_circuit_breaker(name: str, config: CircuitBreakerConfig | None = None) -> CircuitBreaker:
    """The process's breaker called ``name`` (made with ``config``, or defaults, on first use),
    from :func:`default_registry`: inside a running backend, the backend's own breaker. Asked
    for with another configuration than the existing breaker's, it is still that breaker, and
    a warning says so once (:meth:`PolicyRegistry.breaker_in_force`)."""
    return default_registry().breaker_in_force(name, config)
