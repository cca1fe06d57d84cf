"""The monitors' leadership lease (ARCHITECTURE §9): one row, ``monitor_lease``, changed only by
compare-and-swap, with a fencing epoch that every write of the leader checks.

- :meth:`LeaseStore.acquire` takes the lease: the row is made if there is none, else taken over
  (``epoch + 1``, ``beat = 0``) only if it is still exactly the one the caller saw (epoch, beat
  and holder); of two monitors that saw the same lease, one wins.
- :meth:`LeaseStore.renew` counts a renewal (``beat + 1``) while the lease is still the caller's
  (epoch and holder); :meth:`LeaseStore.release` gives it up on a clean stop (``holder = ''``).
- :meth:`LeaseStore.fence` makes the :data:`~monitor.store.writing.base.Fence` a leader's writer
  runs first in each transaction: it finds the lease still the leader's, or raises
  :class:`~monitor.store.errors.LeaseLost` and nothing of the transaction is stored.

Times are the caller's (``now`` from its clock): they are for people to read. Who may take over
is decided by the standby watching epoch and beat on its own monotonic clock, never by comparing
these times with another monitor's (``monitor.leadership``).

On PostgreSQL the fence reads the row ``FOR KEY SHARE``, held until the write's transaction
ends. A takeover or a release first locks the row ``FOR UPDATE``, which conflicts with it: they
wait for the writes in flight, and every write that starts after them finds the new epoch (or no
holder) and is refused. A renewal is a plain ``UPDATE`` of columns no key holds (``beat``,
``renewed_at``), which does not conflict with ``KEY SHARE``: however long a write of the leader
takes, its renewals go through meanwhile, so a long write never costs the leader its lease. The
wait is bounded: the fenced transaction tells PostgreSQL to end its session if it sits idle
mid-transaction for :func:`idle_limit` (a leader whose host vanished holds no lock for the hours
TCP would take to notice), and a takeover waits for the row at most :func:`lock_wait`. On SQLite
a second monitor on the same file is refused outright, and the fence is a plain check (a renewal
waits for SQLite's one write lock: the writer keeps its transactions short, retention included).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import ColumnElement, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.store.errors import LeaseLost
from monitor.store.failures import DRIVER_ERRORS, translate
from monitor.store.models import LeaderLease
from monitor.store.reading.replicas import lease_of
from monitor.store.schema import LEADER, monitor_lease, revisions
from monitor.store.writing.base import Fence

MAX_HOLDER = 200
"""A monitor's id is stored cut at this many characters (its column's width)."""
MIN_WAIT = 5.0
"""Seconds: the least :func:`idle_limit` and :func:`lock_wait`, however short the ttl (a busy
event loop may leave a transaction idle for a moment between its statements)."""


def idle_limit(lease: LeaderLease) -> float:
    """How long a fenced transaction may sit idle before PostgreSQL ends its session."""
    return max(lease.ttl, MIN_WAIT)


def lock_wait(ttl: float) -> float:
    """How long a takeover waits for the writes in flight under the lease it takes over: they
    end within :func:`idle_limit` of their last statement, or PostgreSQL ends them."""
    return 2 * max(ttl, MIN_WAIT)


class LeaseStore:
    """The leadership lease in the store at ``engine``; each method is one transaction and
    raises a :class:`~monitor.store.errors.StoreError` if the store fails it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name

    async def read(self) -> LeaderLease | None:
        """The lease as stored (None: no monitor has ever led this store)."""
        async with self._transaction() as connection:
            row = (
                (await connection.execute(select(monitor_lease).where(_THE_LEASE)))
                .mappings()
                .first()
            )
        return lease_of(row) if row is not None else None

    async def acquire(
        self, holder: str, *, ttl: float, now: float, expected: LeaderLease | None
    ) -> LeaderLease | None:
        """Take the lease for ``holder`` if it is still ``expected`` (None: if there is none);
        the lease taken, or None if another monitor changed it first (it took it, renewed it,
        or released it)."""
        holder = holder[:MAX_HOLDER]
        async with self._transaction() as connection:
            if expected is None:
                taken = LeaderLease(holder, 1, 0, now, now, ttl)
                insert = (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(
                    monitor_lease
                )
                result = await connection.execute(
                    insert.values(name=LEADER, **_columns(taken)).on_conflict_do_nothing(
                        index_elements=["name"]
                    )
                )
            else:
                taken = LeaderLease(holder, expected.epoch + 1, 0, now, now, ttl)
                await self._wait_for_writes(connection, lock_wait(ttl))
                result = await connection.execute(
                    update(monitor_lease)
                    .where(_THE_LEASE, *_still(expected), monitor_lease.c.beat == expected.beat)
                    .values(**_columns(taken))
                )
            if result.rowcount != 1:
                return None
            await _revise(connection, self._dialect)
        return taken

    async def renew(self, lease: LeaderLease, *, now: float) -> LeaderLease | None:
        """Count a renewal of ``lease``; the lease renewed, or None if it is no longer ours
        (another monitor took it over)."""
        async with self._transaction() as connection:
            row = (
                (
                    await connection.execute(
                        update(monitor_lease)
                        .where(_THE_LEASE, *_still(lease))
                        .values(beat=monitor_lease.c.beat + 1, renewed_at=now)
                        .returning(*monitor_lease.c)
                    )
                )
                .mappings()
                .first()
            )
        return lease_of(row) if row is not None else None

    async def release(self, lease: LeaderLease, *, now: float) -> None:
        """Give the lease up (a clean stop), if it is still ours: a standby takes it at once."""
        async with self._transaction() as connection:
            await self._wait_for_writes(connection, lock_wait(lease.ttl))
            result = await connection.execute(
                update(monitor_lease)
                .where(_THE_LEASE, *_still(lease))
                .values(holder="", renewed_at=now)
            )
            if result.rowcount == 1:
                await _revise(connection, self._dialect)

    def fence(self, lease: LeaderLease) -> Fence:
        """The fence of a writer that writes for ``lease``'s holder (``HistoryWriter(engine,
        fence=...)``): raises :class:`LeaseLost` in a transaction that finds the lease no longer
        its holder's, before anything of it is written."""
        postgres = self._dialect == "postgresql"
        query = select(monitor_lease.c.epoch).where(_THE_LEASE, *_still(lease))
        if postgres:
            # One round trip: the idle limit is set (for this transaction alone) by the same
            # statement that locks the row.
            limit = str(round(idle_limit(lease) * 1000))
            query = query.add_columns(
                func.set_config("idle_in_transaction_session_timeout", limit, literal(True))
            ).with_for_update(read=True, key_share=True)

        async def check(connection: AsyncConnection) -> None:
            if (await connection.execute(query)).first() is None:
                raise LeaseLost()

        return check

    async def _wait_for_writes(self, connection: AsyncConnection, most: float) -> None:
        """On PostgreSQL, lock the row ``FOR UPDATE`` in ``connection``'s transaction: it waits
        for the fenced writes in flight (``FOR KEY SHARE``), at most ``most`` seconds, and holds
        off those that start until the epoch or holder changed here has committed. (The change
        itself, an ``UPDATE`` of no key column, would not wait for them.)"""
        if self._dialect != "postgresql":
            return
        await _set_local(connection, "lock_timeout", most)
        await connection.execute(select(monitor_lease.c.name).where(_THE_LEASE).with_for_update())

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.begin() as connection:
                yield connection
        except DRIVER_ERRORS as error:
            raise translate(error) from error


_THE_LEASE = monitor_lease.c.name == LEADER


def _still(lease: LeaderLease) -> tuple[ColumnElement[bool], ...]:
    """The lease row is still ``lease``'s: same epoch, same holder."""
    return (monitor_lease.c.epoch == lease.epoch, monitor_lease.c.holder == lease.holder)


def _columns(lease: LeaderLease) -> dict[str, object]:
    return {
        "holder": lease.holder,
        "epoch": lease.epoch,
        "beat": lease.beat,
        "acquired_at": lease.acquired_at,
        "renewed_at": lease.renewed_at,
        "ttl": lease.ttl,
    }


async def _set_local(connection: AsyncConnection, setting: str, seconds: float) -> None:
    await connection.execute(
        select(func.set_config(setting, str(round(seconds * 1000)), literal(True)))
    )


async def _revise(connection: AsyncConnection, dialect: str) -> None:
    """A change of leader moves ``HistoryReader.last_change`` (a renewal does not)."""
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(revisions)
    await connection.execute(
        insert.values(name="leader", value=1).on_conflict_do_update(
            index_elements=["name"], set_={"value": revisions.c.value + 1}
        )
    )
