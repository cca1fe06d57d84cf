"""The status page's only write path: subscribers' requests (subscribe, confirm, unsubscribe).

The page holds no leadership lease and writes nothing else, so this module is narrow on purpose:
SQLAlchemy Core on :mod:`monitor.store.schema`'s ``subscribers`` and ``deliveries``, its own
engine, no fence (a person's request, like an engineer's ack, is made by whoever receives it), and
none of the monitor's writer (the import-linter contract ``statuspage-reads-only`` forbids
``monitor.store.writer``, ``writing`` and ``batch`` to the page, and so to what it imports).

A subscription request queues a confirmation (a delivery with no message, which the monitor's
sender turns into an e-mail or a webhook ``subscription_confirmation``); nothing is sent from
here. What each request did comes back as a :class:`~monitor.store.models.SubscribeOutcome`;
the page words all but ``FULL`` the same, so nobody learns who is subscribed.

Every request is one transaction. On SQLite it takes the write lock first (``BEGIN
IMMEDIATE``): a deferred transaction that read and then wrote could fail at once, whatever the
busy timeout, when another writer committed in between. On PostgreSQL the live row is locked
(``FOR UPDATE``) and two first requests for one address meet at the unique index on
``(kind, address_key)``: the loser tries again once and finds the winner's row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.store.engine import open_engine
from monitor.store.failures import DRIVER_ERRORS, translate
from monitor.store.public_models import DeliveryState, SubscribeOutcome, Subscriber, SubscriberKind
from monitor.store.reading.public import keys_json, subscriber_from_row
from monitor.store.schema import address_key, deliveries, subscribers

UNSUBSCRIBED = "unsubscribed"
"""The ``error`` of a delivery dropped because its subscriber left before it was sent."""
SUPERSEDED = "superseded"
"""The ``error`` of a confirmation dropped, unsent, because a newer one was queued."""


def normalise_address(kind: SubscriberKind, address: str) -> str:
    """An address as it is stored: an e-mail address stripped, its domain lower-cased (the local
    part is the mailbox owner's: case may matter to their server); a webhook URL stripped and
    otherwise as given (its path and query are the receiver's)."""
    address = address.strip()
    if kind is SubscriberKind.EMAIL:
        local, at, domain = address.rpartition("@")
        if at:
            return f"{local}@{domain.lower()}"
    return address


class SubscriberInbox:
    """Subscribers' requests on an engine of the store (not read-only)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        """One transaction, committed on the way out; the database's errors as it raised them."""
        async with self.engine.begin() as connection:
            if self._sqlite:
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
            yield connection

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        """:meth:`_transaction` with the database's errors in the store's words
        (:mod:`monitor.store.errors`)."""
        try:
            async with self._transaction() as connection:
                yield connection
        except DRIVER_ERRORS as error:
            raise translate(error) from error

    async def subscribe(
        self,
        kind: SubscriberKind,
        address: str,
        components: Sequence[str],
        language: str,
        at: float,
        *,
        resend_after: float,
        max_pending: int,
        pending_for: float | None = None,
    ) -> SubscribeOutcome:
        """Ask for ``address`` to be told about ``components`` (empty: every one) in
        ``language``.

        - no live subscriber for it (never subscribed, or unsubscribed): a new unconfirmed row
          and a confirmation request (``PENDING``);
        - an unconfirmed one: its components and language replaced, and a confirmation request
          again (``PENDING``) unless one was queued less than ``resend_after`` seconds ago
          (``LIMITED``: nothing queued);
        - an unconfirmed one asked again after ``resend_after``: the confirmations still owed
          to it are dropped (failed, ``superseded``), so only the newest link is sent;
        - a confirmed one: nothing changed, nothing sent (``ALREADY``): a form is no proof of
          owning the address, so it never rewrites a confirmed subscriber;
        - ``FULL``, nothing written: the request would add an unconfirmed subscriber while
          ``max_pending`` are waiting. Waiting: unconfirmed, and (with ``pending_for``, the
          page's ``confirm_within``) requested within that many seconds — a lapsed request
          neither counts nor blocks a new one.

        The caller validates ``address`` (shape, length) and ``components``."""
        stored = normalise_address(kind, address)
        key = address_key(stored, kind.value)
        chosen = keys_json(list(dict.fromkeys(components)))
        for attempt in (1, 2):
            try:
                async with self._transaction() as connection:
                    return await self._subscribe(
                        connection,
                        kind,
                        stored,
                        key,
                        chosen,
                        language,
                        at,
                        resend_after=resend_after,
                        max_pending=max_pending,
                        pending_for=pending_for,
                    )
            except IntegrityError as error:
                # A concurrent first request for the same address won the unique index (only on
                # PostgreSQL: SQLite's write lock serialises the two): its row is there now.
                if attempt == 2:
                    raise translate(error) from error
            except DRIVER_ERRORS as error:
                raise translate(error) from error
        raise AssertionError("unreachable")

    async def _subscribe(
        self,
        connection: AsyncConnection,
        kind: SubscriberKind,
        stored: str,
        key: str,
        chosen: str,
        language: str,
        at: float,
        *,
        resend_after: float,
        max_pending: int,
        pending_for: float | None,
    ) -> SubscribeOutcome:
        query = select(subscribers).where(
            subscribers.c.kind == kind.value, subscribers.c.address_key == key
        )
        if not self._sqlite:
            query = query.with_for_update()
        row = (await connection.execute(query)).mappings().first()
        lapsed = (
            row is not None
            and row["confirmed_at"] is None
            and pending_for is not None
            and row["created_at"] < at - pending_for
        )
        if row is not None and row["confirmed_at"] is not None:
            # Never changed by a form: anyone may post any address, and replacing a confirmed
            # subscriber's components or language would let them silence it. Its owner changes
            # them by unsubscribing (the link in every message) and subscribing again.
            return SubscribeOutcome.ALREADY
        if row is None or lapsed:
            if await self._pending(connection, at, pending_for) >= max_pending:
                return SubscribeOutcome.FULL
        elif row["confirm_sent_at"] is not None and at - row["confirm_sent_at"] < resend_after:
            await connection.execute(
                update(subscribers)
                .where(subscribers.c.id == row["id"])
                .values(components=chosen, language=language)
            )
            return SubscribeOutcome.LIMITED
        if row is None:
            subscriber_id = (
                await connection.execute(
                    subscribers.insert()
                    .values(
                        kind=kind.value,
                        address=stored,
                        address_key=key,
                        components=chosen,
                        language=language,
                        created_at=at,
                        confirm_sent_at=at,
                    )
                    .returning(subscribers.c.id)
                )
            ).scalar_one()
        else:
            subscriber_id = row["id"]
            # The stored address is kept as first written (its key is the same): a request in
            # other letter case does not rewrite where the confirmation goes.
            values: dict[str, object] = {
                "components": chosen,
                "language": language,
                "confirm_sent_at": at,
            }
            if lapsed:
                values["created_at"] = at  # a new request: it waits (and counts) afresh
            await connection.execute(
                update(subscribers).where(subscribers.c.id == subscriber_id).values(**values)
            )
            # One live confirmation link at a time: the ones queued before (still being tried,
            # for up to a day) are dropped with this one.
            await connection.execute(
                update(deliveries)
                .where(
                    deliveries.c.subscriber_id == subscriber_id,
                    deliveries.c.message_id.is_(None),
                    deliveries.c.state == DeliveryState.PENDING.value,
                )
                .values(state=DeliveryState.FAILED.value, done_at=at, error=SUPERSEDED)
            )
        await connection.execute(
            deliveries.insert().values(
                subscriber_id=subscriber_id,
                message_id=None,
                state=DeliveryState.PENDING.value,
                attempts=0,
                next_at=at,
                created_at=at,
            )
        )
        return SubscribeOutcome.PENDING

    async def _pending(
        self, connection: AsyncConnection, at: float, pending_for: float | None
    ) -> int:
        waiting = and_(subscribers.c.confirmed_at.is_(None), subscribers.c.address_key.is_not(None))
        if pending_for is not None:
            waiting = and_(waiting, subscribers.c.created_at >= at - pending_for)
        count = select(func.count()).select_from(subscribers).where(waiting)
        found = await connection.scalar(count)
        return int(found or 0)

    async def confirm(self, subscriber_id: int, at: float) -> Subscriber | None:
        """Mark a subscriber confirmed (once: a second confirmation keeps the first time). One
        that unsubscribed stays unsubscribed (an old confirmation link never brings it back).
        Returns the subscriber as it is now; None: no such subscriber."""
        async with self._begin() as connection:
            await connection.execute(
                update(subscribers)
                .where(
                    subscribers.c.id == subscriber_id,
                    subscribers.c.confirmed_at.is_(None),
                    subscribers.c.unsubscribed_at.is_(None),
                )
                .values(confirmed_at=at)
            )
            return await self._read(connection, subscriber_id)

    async def unsubscribe(self, subscriber_id: int, at: float) -> Subscriber | None:
        """Stop telling a subscriber anything (idempotent: the first time is kept). Its live
        ``address_key`` is cleared, so the address may subscribe again (a new row), and the
        deliveries still owed to it are dropped (failed, ``unsubscribed``) in the same
        transaction: nothing more is sent after the click. None: no such subscriber."""
        async with self._begin() as connection:
            changed = await connection.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id, subscribers.c.unsubscribed_at.is_(None))
                .values(unsubscribed_at=at, address_key=None)
            )
            if changed.rowcount:
                await connection.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.subscriber_id == subscriber_id,
                        deliveries.c.state == DeliveryState.PENDING.value,
                    )
                    .values(state=DeliveryState.FAILED.value, done_at=at, error=UNSUBSCRIBED)
                )
            return await self._read(connection, subscriber_id)

    async def subscriber(self, subscriber_id: int) -> Subscriber | None:
        try:
            async with self.engine.connect() as connection:
                return await self._read(connection, subscriber_id)
        except DRIVER_ERRORS as error:
            raise translate(error) from error

    @staticmethod
    async def _read(connection: AsyncConnection, subscriber_id: int) -> Subscriber | None:
        row = (
            (await connection.execute(select(subscribers).where(subscribers.c.id == subscriber_id)))
            .mappings()
            .first()
        )
        return subscriber_from_row(row) if row is not None else None


@asynccontextmanager
async def open_inbox(url: str) -> AsyncIterator[SubscriberInbox]:
    """The inbox on the store at ``url`` (``[storage] url``), on an engine of its own (SQLite:
    WAL and the busy timeout, as the monitor's), disposed of on the way out. Nothing is
    connected until the first request."""
    engine = open_engine(url)
    try:
        yield SubscriberInbox(engine)
    finally:
        await engine.dispose()
