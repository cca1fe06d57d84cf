"""Text that is safe to show.

:func:`sanitize_error`: an error as its class and a generic description, nothing else. Driver
messages carry host names, ports, user names and sometimes DSNs; none of that may reach a
health report, a log line meant for users, or the status page.

:func:`one_line`: text from outside (a backend's error, a person's name or reason, an alert's
summary) as one printable line of bounded length, for a log line, a terminal cell, a notice.
"""

from __future__ import annotations

from shared.resilience.errors import CallTimeoutError, CircuitBreakerOpenError

ELLIPSIS = "…"


def one_line(text: str, limit: int) -> str:
    """``text`` as one printable line of at most ``limit`` characters: each character that is
    not printable (a control, a line break, an escape) made a space, whitespace runs one space,
    the ends stripped, and a longer text cut with ``…``. Only the first ``4 × limit`` characters
    are read: a hostile megabyte costs no more than a long line."""
    if limit <= 0:
        return ""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text[: limit * 4]).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + ELLIPSIS


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
