"""What can go wrong with the monitor's store, in the store's own words.

The SQL adapters translate their driver's errors into these at their edge
(:mod:`monitor.store.failures`), so the daemon, the TUI and the status page catch
``StoreError`` and its kinds and never a database library's exceptions.

Messages say what is wrong and what to do about it; they never name a host, a user or a password
(a TUI banner and a log line show them as they are). The driver's own error stays attached as
``__cause__`` for a traceback.
"""

from __future__ import annotations


class StoreError(Exception):
    """The store could not do what was asked (the base of every store error)."""


class LeaseLost(StoreError):
    """This monitor no longer leads: another took the leadership lease (a higher fencing epoch),
    or it was released. A write fenced by the old lease is refused whole, nothing of it stored;
    the monitor stops writing and goes back to standing by (ARCHITECTURE §9)."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "this monitor no longer leads")


class StoreURLError(StoreError, ValueError):
    """The storage URL names a database the monitor cannot use."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or is failing (refused connection, wrong login, locked or
    unreadable file, out of connections): usually passes; worth retrying later."""


class StoreNotInitialised(StoreError):
    """The store lacks a table this program reads: the monitor has never run against it (or,
    for a store of an older version, not since this program was installed). Readers show an
    empty history; ``questcity monitor`` creates the tables when it starts."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message or "the store has no tables yet: run `questcity monitor` with this config first"
        )


class StoreSchemaMismatch(StoreError):
    """The store's schema is not the one this program was written for.

    ``store_is_older``: the store needs upgrading (``questcity store upgrade --config …``);
    otherwise this program is older than the store and must be upgraded itself (never the
    store taken back)."""

    def __init__(
        self,
        *,
        store_revision: str | None,
        code_revision: str | None,
        store_is_older: bool,
        config: str | None = None,
    ) -> None:
        self.store_revision = store_revision
        self.code_revision = code_revision
        self.store_is_older = store_is_older
        self.config = config
        known = store_revision is not None or code_revision is not None
        revisions = (
            f" (the store at revision {store_revision or 'none'}, this program at "
            f"{code_revision or 'none'})"
        )
        shown = revisions if known else ""
        if store_is_older:
            command = f"questcity store upgrade --config {config or 'monitor.toml'}"
            message = f"the store's schema is older than this program{shown}: run `{command}`"
        else:
            message = (
                f"the store's schema is newer than this program{shown}: this program is older "
                "than the store; upgrade questcity (never take the store back)"
            )
        super().__init__(message)
