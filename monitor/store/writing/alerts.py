"""Writes of alerts: fired, then resolved."""

from __future__ import annotations

from sqlalchemy import insert, update

from monitor.store.models import AlertState
from monitor.store.schema import alerts
from monitor.store.writing.base import WriteBase


class AlertWrites(WriteBase):
    async def fire_alert(
        self, rule: str, target: str, service: str, summary: str, at: float
    ) -> int:
        async with self._begin() as connection:
            result = await connection.execute(
                insert(alerts).values(
                    rule=rule,
                    target=target,
                    service=service,
                    state=AlertState.FIRING.value,
                    summary=summary,
                    started_at=at,
                    resolved_at=None,
                )
            )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    async def resolve_alert(self, alert_id: int, at: float) -> None:
        async with self._begin() as connection:
            await connection.execute(
                update(alerts)
                .where(alerts.c.id == alert_id)
                .values(state=AlertState.RESOLVED.value, resolved_at=at)
            )
            await self._revise(connection, "alerts")
