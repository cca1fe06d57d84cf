"""The SQL adapters' edge: a database library's exception, as a :mod:`monitor.store.errors` one.

Everything the adapters (:mod:`monitor.store.reading`, :mod:`monitor.store.writing`) send to a
database goes through a funnel that calls :func:`translate` on what it raises; nothing of
SQLAlchemy, asyncpg or sqlite3 leaves the store.

Decided by type and code, not by message, wherever the driver gives one:

- PostgreSQL (asyncpg): the SQLSTATE. ``42P01`` (undefined table) is
  :class:`StoreNotInitialised`; ``42703`` (undefined column) a store older than the code; classes
  ``08`` (connection), ``28`` (login), ``3D`` (no such database), ``53`` (resources), ``57``
  (shutting down), ``58`` (system) are :class:`StoreUnavailable`, and so is ``55P03`` (a
  ``lock_timeout`` ran out).
- SQLite: sqlite3 reports a missing table as the generic ``SQLITE_ERROR`` (the code of a syntax
  error too), so "no such table" is told by its message — here, once. Any other
  ``OperationalError`` (locked, busy, cannot open, disk I/O, read-only) is unavailability.
- Sockets (``OSError``), timeouts, a pool out of connections, a connection lost mid-way:
  :class:`StoreUnavailable`.

Anything else the database refused (a constraint, a value out of range) is a plain
:class:`StoreError`. Messages never carry the driver's text for PostgreSQL (it may name a host or
a user), only what went wrong in words and the SQLSTATE.
"""

from __future__ import annotations

import os
import sqlite3

from sqlalchemy import exc as sa

from monitor.store.errors import (
    StoreError,
    StoreNotInitialised,
    StoreSchemaMismatch,
    StoreUnavailable,
)

DRIVER_ERRORS: tuple[type[BaseException], ...] = (sa.SQLAlchemyError, sqlite3.Error, OSError)
"""What the funnels catch (``TimeoutError`` is an ``OSError``; asyncpg's errors arrive wrapped
in SQLAlchemy's, or as ``OSError`` while connecting)."""

UNDEFINED_TABLE = "42P01"
UNDEFINED_COLUMN = "42703"
LOCK_NOT_AVAILABLE = "55P03"
"""A ``lock_timeout`` ran out (a takeover of the leadership lease waiting for the old leader's
writes, :mod:`monitor.store.leases`): passes, like the unavailability classes below."""
_UNAVAILABLE_CLASSES = {
    "08": "cannot connect to PostgreSQL",
    "28": "PostgreSQL refused the login (check the user and password of [storage] url)",
    "3D": "the database named in [storage] url does not exist",
    "53": "PostgreSQL is out of resources (connections, memory or disk)",
    "57": "PostgreSQL is shutting down, starting, or cancelled the statement",
    "58": "PostgreSQL failed (a system error on its side)",
}


def translate(error: BaseException) -> StoreError:
    """``error`` (one of :data:`DRIVER_ERRORS`) in the store's words; a ``StoreError`` as is."""
    if isinstance(error, StoreError):
        return error
    sqlstate = _sqlstate(error)
    if sqlstate is not None:
        return _postgres(error, sqlstate)
    found = _sqlite_error(error)
    if found is not None:
        message = str(found).splitlines()[0] if str(found) else type(found).__name__
        if message.startswith("no such table"):
            return StoreNotInitialised()
        if message.startswith("no such column") or "has no column named" in message:
            return StoreSchemaMismatch(store_revision=None, code_revision=None, store_is_older=True)
        if isinstance(found, sqlite3.OperationalError):
            return StoreUnavailable(f"cannot use the store: {message}")
        return StoreError(f"the store refused the operation: {message}")
    if _unavailable(error):
        return StoreUnavailable(f"cannot reach the store: {_reason(error)}")
    return StoreError(f"the store refused the operation ({type(error).__name__})")


def _postgres(error: BaseException, sqlstate: str) -> StoreError:
    if sqlstate == UNDEFINED_TABLE:
        return StoreNotInitialised()
    if sqlstate == UNDEFINED_COLUMN:
        return StoreSchemaMismatch(store_revision=None, code_revision=None, store_is_older=True)
    if sqlstate == LOCK_NOT_AVAILABLE:
        return StoreUnavailable(f"PostgreSQL timed out waiting for a lock (SQLSTATE {sqlstate})")
    words = _UNAVAILABLE_CLASSES.get(sqlstate[:2])
    if words is not None:
        return StoreUnavailable(f"{words} (SQLSTATE {sqlstate})")
    if _unavailable(error):
        return StoreUnavailable(f"cannot use the store (SQLSTATE {sqlstate})")
    return StoreError(f"the store refused the operation (SQLSTATE {sqlstate})")


def _chain(error: BaseException) -> list[BaseException]:
    """``error``, what it wraps (``orig``), and its causes and contexts, each once."""
    seen: list[BaseException] = []
    pending: list[object] = [error]
    while pending:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or any(current is s for s in seen):
            continue
        seen.append(current)
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return seen


def _sqlstate(error: BaseException) -> str | None:
    for current in _chain(error):
        code = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def _sqlite_error(error: BaseException) -> sqlite3.Error | None:
    return next((e for e in _chain(error) if isinstance(e, sqlite3.Error)), None)


def _unavailable(error: BaseException) -> bool:
    for current in _chain(error):
        if isinstance(current, sa.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(
            current,
            sa.OperationalError
            | sa.InterfaceError
            | sa.TimeoutError
            | sa.DisconnectionError
            | OSError,
        ):
            return True
    return False


def _reason(error: BaseException) -> str:
    """Why, without the driver's text: an ``OSError``'s text names the address it tried."""
    for current in _chain(error):
        if isinstance(current, TimeoutError | sa.TimeoutError):
            return "timed out"
        if isinstance(current, OSError):
            return os.strerror(current.errno).lower() if current.errno else "connection failed"
    return type(error).__name__
