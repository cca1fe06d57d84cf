"""One monitor per SQLite store: an ``flock`` on ``<db file>.lock``, held for the process's life
(the file's real path: symlinks resolved).

A SQLite store is one file on one machine, so the leadership lease cannot make several monitors
on it useful (ARCHITECTURE §11): a second one is refused before it touches the store. The kernel
drops an ``flock`` when the process holding it dies, even by ``kill -9``, so a crashed monitor
never leaves a stale lock for the next one to clear by hand (a pid file would). The holder's pid
is written into the lock file only to be named in the refusal.

PostgreSQL stores and in-memory SQLite databases take no lock: several monitors on PostgreSQL
share one through the lease, and an in-memory database is private to its process anyway.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Self

LOCK_SUFFIX = ".lock"
_MAX_PID_TEXT = 32
"""Characters of the lock file read for the holder's pid (it holds a pid and a newline)."""


class StoreLocked(Exception):
    """Another monitor holds the SQLite store's lock; the message is the line to print."""

    def __init__(self, database: str, pid: int | None) -> None:
        self.database = database
        self.pid = pid
        who = f"another monitor (pid {pid})" if pid is not None else "another monitor"
        super().__init__(
            f"{who} already runs on {database}; an SQLite store takes one monitor — "
            "run several on a PostgreSQL store (ARCHITECTURE §11)"
        )


class StoreLockError(Exception):
    """The lock file cannot be opened or locked (a read-only folder, a file system without
    ``flock``); the message is the line to print."""


class SQLiteStoreLock:
    """The lock on one SQLite file; :meth:`acquire` raises :class:`StoreLocked` when another
    process holds it. A context manager; :meth:`release` is for tests (the process's end
    releases it otherwise)."""

    def __init__(self, database: str) -> None:
        self.database = database
        """The store's file as ``[storage] url`` names it (shown in the refusal)."""
        # Next to the file itself, whatever the URL's spelling: two monitors naming one file
        # through a symlink, a symlinked folder or a relative path lock the same lock file.
        self.path = Path(os.path.realpath(database) + LOCK_SUFFIX)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise StoreLockError(
                f"the lock file of the SQLite store cannot be opened: {self.path}: "
                f"{error.strerror or type(error).__name__}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            pid = _holder_pid(fd)
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StoreLocked(self.database, pid) from None
            raise StoreLockError(
                f"the lock file of the SQLite store cannot be locked: {self.path}: "
                f"{error.strerror or type(error).__name__}"
            ) from None
        # Ours now: say who holds it, for the refusal a second monitor prints.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Unlock and close (the file stays: deleting it would race a monitor starting now)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _holder_pid(fd: int) -> int | None:
    """The pid the holder wrote, if it wrote one yet (it may be between locking and writing)."""
    try:
        text = os.pread(fd, _MAX_PID_TEXT, 0).decode("ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and 0 < len(text) <= 10 else None


def lock_sqlite_store(storage_url: str) -> SQLiteStoreLock | None:
    """Take the lock of the SQLite file ``storage_url`` names; None for a store that takes no
    lock (PostgreSQL, in-memory SQLite). Raises :class:`StoreLocked` or :class:`StoreLockError`;
    the URL's own errors as :func:`monitor.store.engine.sqlite_file` raises them."""
    from monitor.store.engine import sqlite_file

    database = sqlite_file(storage_url)
    if database is None:
        return None
    lock = SQLiteStoreLock(database)
    lock.acquire()
    return lock
