"""Database failures, translated at the boundary.

::

    Exception
    ├── DatabaseError
    │   ├── DatabaseUnavailable (also a ConnectionError: retried, counted by the breaker)
    │   │   └── PoolExhausted          no connection free in time: shed load, not a failure
    │   └── Conflict                   a unique constraint said no: a business error
    └── (anything else passes through unchanged)

SQLAlchemy's and the drivers' exceptions carry DSNs, hosts and SQL; none of that crosses this line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import exc as sa_exc


class DatabaseError(Exception):
    """Base of the database layer's own errors."""


class DatabaseUnavailable(DatabaseError, ConnectionError):
    """The database did not answer properly: refused, reset, timed out, or shutting down."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"database unavailable ({reason})")
        self.reason = reason


class PoolExhausted(DatabaseError):
    """Every connection is busy and the wait queue is full (or the wait ran out)."""

    retry_after = 1.0

    def __init__(self) -> None:
        super().__init__("database connection pool exhausted")


class Conflict(DatabaseError):
    """A uniqueness rule refused the write (e.g. a taken username)."""


# PostgreSQL SQLSTATE classes that mean "the server, not the statement, is the problem".
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def _is_unavailable(error: sa_exc.DBAPIError) -> bool:
    if error.connection_invalidated:
        return True
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
        return True
    if isinstance(original, OSError | ConnectionError | TimeoutError):
        return True
    name = type(original).__name__ if original is not None else ""
    return isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError) or name in {
        "ConnectionDoesNotExistError",
        "InterfaceError",
        "ConnectionFailureError",
        "CannotConnectNowError",
        "TooManyConnectionsError",
    }


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Run a unit of work, turning driver errors into the tree above."""
    try:
        yield
    except sa_exc.TimeoutError:
        raise PoolExhausted() from None
    except sa_exc.IntegrityError:
        raise Conflict("A record with these values exists already.") from None
    except sa_exc.DBAPIError as error:
        if _is_unavailable(error):
            raise DatabaseUnavailable(type(error.orig or error).__name__) from None
        raise
    except (TimeoutError, OSError) as error:
        raise DatabaseUnavailable(type(error).__name__) from None
