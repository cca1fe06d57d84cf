"""Reads of alerts, firing and past, of the notices still owed, and of the silences in force."""

from __future__ import annotations

from sqlalchemy import Select, or_, select
from sqlalchemy.engine import RowMapping

from monitor.store.models import Alert, AlertState, Silence
from monitor.store.reading.base import ReadBase
from monitor.store.schema import alerts, silences


class AlertReads(ReadBase):
    async def alerts(self, *, active_only: bool = True, limit: int = 100) -> list[Alert]:
        query = select(alerts).order_by(alerts.c.started_at.desc()).limit(limit)
        if active_only:
            query = query.where(alerts.c.state == AlertState.FIRING.value)
        return await self._alerts(query)

    async def alert(self, alert_id: int) -> Alert | None:
        found = await self._alerts(select(alerts).where(alerts.c.id == alert_id))
        return found[0] if found else None

    async def unnotified_alerts(self, *, limit: int = 1000) -> list[Alert]:
        """Alerts whose current state's notice no monitor has handled yet (the outbox), oldest
        first: what a resuming monitor sends."""
        query = (
            select(alerts)
            .where(or_(alerts.c.notified.is_(None), alerts.c.notified != alerts.c.state))
            .order_by(alerts.c.id)
            .limit(limit)
        )
        return await self._alerts(query)

    async def silences(self, *, at: float, limit: int = 1000) -> list[Silence]:
        """Silences in force at ``at`` (``starts_at <= at < ends_at``), newest first."""
        rows = await self._mappings(
            select(silences)
            # ``ends_at`` first: its index leaves out the silences that ended (most of them).
            .where(silences.c.ends_at > at, silences.c.starts_at <= at)
            .order_by(silences.c.starts_at.desc(), silences.c.id.desc())
            .limit(limit)
        )
        return [
            Silence(
                id=r["id"],
                component=r["component"],
                starts_at=r["starts_at"],
                ends_at=r["ends_at"],
                created_by=r["created_by"],
                reason=r["reason"],
            )
            for r in rows
        ]

    async def _alerts(self, query: Select[tuple[object, ...]]) -> list[Alert]:
        return [alert_from_row(r) for r in await self._mappings(query)]


def alert_from_row(r: RowMapping) -> Alert:
    return Alert(
        id=r["id"],
        rule=r["rule"],
        target=r["target"],
        service=r["service"],
        state=AlertState(r["state"]),
        summary=r["summary"],
        started_at=r["started_at"],
        resolved_at=r["resolved_at"],
        notified=None if r["notified"] is None else AlertState(r["notified"]),
        updated_at=r["updated_at"],
        acked_at=r["acked_at"],
        acked_by=r["acked_by"],
    )
