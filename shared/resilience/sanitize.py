"""Error text that is safe to show: the error's class and a generic description, nothing else.

Driver messages carry host names, ports, user names and sometimes DSNs; none of that may reach a
health report, a log line meant for users, or the status page.
"""

from __future__ import annotations

from shared.resilience.errors import CallTimeoutError, CircuitBreakerOpenError


def sanitize_error(exc: BaseException) -> str:
    kind = type(exc).__name__
    if isinstance(exc, CallTimeoutError):
        return f"{kind}: timed out after {exc.timeout:g} s"
    if isinstance(exc, CircuitBreakerOpenError):
        return f"{kind}: circuit breaker open"
    if isinstance(exc, OSError) and exc.strerror:
        # strerror is the C library's fixed text ("Connection refused"), never the peer's address.
        return f"{kind}: {exc.strerror}"
    if isinstance(exc, TimeoutError):
        return f"{kind}: timed out"
    return kind
