"""Reads of alerts, firing and past, and of the notices still owed."""

from __future__ import annotations

from sqlalchemy import Select, or_, select

from monitor.store.models import Alert, AlertState
from monitor.store.reading.base import ReadBase
from monitor.store.schema import alerts


class AlertReads(ReadBase):
    async def alerts(self, *, active_only: bool = True, limit: int = 100) -> list[Alert]:
        query = select(alerts).order_by(alerts.c.started_at.desc()).limit(limit)
        if active_only:
            query = query.where(alerts.c.state == AlertState.FIRING.value)
        return await self._alerts(query)

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

    async def _alerts(self, query: Select[tuple[object, ...]]) -> list[Alert]:
        rows = await self._mappings(query)
        return [
            Alert(
                id=r["id"],
                rule=r["rule"],
                target=r["target"],
                service=r["service"],
                state=AlertState(r["state"]),
                summary=r["summary"],
                started_at=r["started_at"],
                resolved_at=r["resolved_at"],
                notified=None if r["notified"] is None else AlertState(r["notified"]),
            )
            for r in rows
        ]
