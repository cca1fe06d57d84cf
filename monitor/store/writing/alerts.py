"""Writes of alerts: fired, then resolved, and each state's notice marked handled."""

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
                    notified=None,
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

    async def mark_notified(self, alert_id: int, state: AlertState) -> None:
        """Mark ``state``'s notice of the alert handled (fenced like every write). Only while
        the alert is still in that state: a firing notice finished after the alert resolved
        must not hide the resolved notice still owed."""
        async with self._begin() as connection:
            await connection.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.state == state.value)
                .values(notified=state.value)
            )
