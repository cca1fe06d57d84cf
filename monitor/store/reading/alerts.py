"""Reads of alerts, firing and past."""

from __future__ import annotations

from sqlalchemy import select

from monitor.store.models import Alert, AlertState
from monitor.store.reading.base import ReadBase
from monitor.store.schema import alerts


class AlertReads(ReadBase):
    async def alerts(self, *, active_only: bool = True, limit: int = 100) -> list[Alert]:
        query = select(alerts).order_by(alerts.c.started_at.desc()).limit(limit)
        if active_only:
            query = query.where(alerts.c.state == AlertState.FIRING.value)
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
            )
            for r in rows
        ]
