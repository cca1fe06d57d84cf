"""An application's policies as the process's defaults, while it runs.

The seed's module-level accessors (``get_circuit_breaker(name)``, ``@circuit_breaker(name)``,
``@retry_with_backoff``, ``retry_database_operation``, ``get_health_checker()``) read the process's
default registry and health checker. An application that builds its own (to give them its clock,
and so that tests can run many apps in one process) installs them as the defaults for as long as
it runs, so that code written as the seed shows it reaches the application's breakers and checks
rather than a second, empty set::

    with as_process_defaults(registry=registry, checker=checker):
        ...  # the application runs

Decorators applied before (at import time) follow: each looks the default registry up on every
call (one global load) and rebinds to its breaker of the same name when it changed.

Two applications at once in one process (tests): installations stack, so the one started last and
still running is the default; one stopping withdraws only its own installation, in any order, and
when none is left the process's own registry and checker are the defaults again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from shared.resilience.health_check import HealthChecker, install_default_checker
from shared.resilience.registry import PolicyRegistry, install_default_registry


@contextmanager
def as_process_defaults(*, registry: PolicyRegistry, checker: HealthChecker) -> Iterator[None]:
    """Within the block, ``registry`` and ``checker`` are the process's defaults."""
    withdraw_registry = install_default_registry(registry)
    withdraw_checker = install_default_checker(checker)
    try:
        yield
    finally:
        withdraw_checker()
        withdraw_registry()
