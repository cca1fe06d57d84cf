"""The library's exceptions.

::

    Exception
    └── ResilienceError
        ├── CircuitBreakerOpenError      the breaker refused the call; it never ran
        └── CallTimeoutError             (also a TimeoutError) a bound set by this library ran out
            ├── RetryDeadlineError       the retry policy's overall deadline ran out
            └── RequestDeadlineError     the request's deadline ran out (request_deadline)
"""

from __future__ import annotations


class ResilienceError(Exception):
    """Base class of every exception this library raises itself."""


class CircuitBreakerOpenError(ResilienceError):
    """The breaker named ``name`` is refusing calls; try again in ``retry_after`` seconds.

    Never retried by :mod:`shared.resilience.retry`: the breaker already decided.
    """

    def __init__(self, name: str, retry_after: float, state: str) -> None:
        super().__init__(name, retry_after, state)
        self.name = name
        self.retry_after = retry_after if retry_after > 0.0 else 0.0
        self.state = state

    def __str__(self) -> str:
        # Formatted on demand: during an outage every request raises one of these.
        return (
            f"circuit breaker {self.name!r} is {self.state}: calls are refused for now, "
            f"retry in {self.retry_after:.1f} s"
        )


class CallTimeoutError(ResilienceError, TimeoutError):
    """A call ran longer than the ``timeout`` that bounds it, and was cancelled."""

    def __init__(self, name: str, timeout: float) -> None:
        self.name = name
        self.timeout = timeout
        super().__init__(f"{name}: call timed out after {timeout:g} s")


class RetryDeadlineError(CallTimeoutError):
    """The retry policy's overall ``timeout`` ran out while an attempt was in flight."""


class RequestDeadlineError(CallTimeoutError):
    """The deadline of the request being served (see :mod:`shared.resilience.request_deadline`)
    ran out: the call was cut short after ``timeout`` seconds, or (``timeout`` 0) not started.

    Never retried: the request has no time left for another attempt.
    """

    def __str__(self) -> str:
        if self.timeout > 0:
            return f"{self.name}: the request's deadline passed after {self.timeout:.3g} s"
        return f"{self.name}: the request's deadline had passed before the call started"
