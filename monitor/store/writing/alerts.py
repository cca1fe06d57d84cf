"""Writes of alerts: fired, re-written with the current figures, resolved, each state's notice
marked handled; acknowledged; and silences.

The engine's writes (fire, update, resolve, mark notified) are fenced like every write of a
monitor that leads. An ack and a silence are people's (``questcity alert ack|silence``, a TUI
tab), made by processes that hold no lease: never fenced."""

from __future__ import annotations

import math

from sqlalchemy import insert, select, update

from monitor.store.models import Alert, AlertState
from monitor.store.reading.alerts import alert_from_row
from monitor.store.schema import alerts, silences
from monitor.store.writing.base import WriteBase, printable

NAME_SIZE = 200
"""``alerts.acked_by`` and ``silences.created_by``."""
COMPONENT_SIZE = 401
"""``silences.component``: ``TARGET/SERVICE``."""
REASON_SIZE = 500
"""``silences.reason``."""


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

    async def resolve_alert(self, alert_id: int, at: float, summary: str | None = None) -> None:
        """Resolve a firing alert; ``summary``: its last figures, which the resolved notice
        carries. An alert already resolved keeps when it was."""
        changes: dict[str, object] = {"state": AlertState.RESOLVED.value, "resolved_at": at}
        if summary is not None:
            changes |= {"summary": summary, "updated_at": at}
        async with self._begin() as connection:
            await connection.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.state == AlertState.FIRING.value)
                .values(**changes)
            )
            await self._revise(connection, "alerts")

    async def update_alert(self, alert_id: int, summary: str, at: float) -> None:
        """Re-write a firing alert's summary with the current figures (no notice is owed)."""
        async with self._begin() as connection:
            changed = await connection.execute(
                update(alerts)
                .where(
                    alerts.c.id == alert_id,
                    alerts.c.state == AlertState.FIRING.value,
                    alerts.c.summary != summary,
                )
                .values(summary=summary, updated_at=at)
            )
            if changed.rowcount:
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

    async def ack_alert(self, alert_id: int, by: str, at: float) -> Alert | None:
        """Acknowledge a firing alert, as ``by`` (bounded, printable) at ``at``. Idempotent: a
        second ack keeps the first's who and when, and a resolved alert is not acked. Returns
        the alert as it is after (the caller tells acked, already acked and resolved apart),
        None if there is no such alert. Not fenced: any process may ack."""
        name = printable(by, NAME_SIZE)
        if not name:
            raise ValueError("an ack needs the name of who acknowledges")
        async with self._begin(fenced=False) as connection:
            changed = await connection.execute(
                update(alerts)
                .where(
                    alerts.c.id == alert_id,
                    alerts.c.state == AlertState.FIRING.value,
                    alerts.c.acked_at.is_(None),
                )
                .values(acked_at=at, acked_by=name)
            )
            if changed.rowcount:
                await self._revise(connection, "alerts")
            row = (
                (await connection.execute(select(alerts).where(alerts.c.id == alert_id)))
                .mappings()
                .first()
            )
        return None if row is None else alert_from_row(row)

    async def add_silence(
        self, component: str, starts_at: float, ends_at: float, by: str, reason: str | None
    ) -> int:
        """Keep ``component``'s alerts quiet from ``starts_at`` until ``ends_at``; its id. The
        texts are bounded and made printable; an empty key or name, or a window that ends
        before it starts, is refused (``ValueError``). Not fenced: any process may silence."""
        key = printable(component, COMPONENT_SIZE)
        name = printable(by, NAME_SIZE)
        why = printable(reason, REASON_SIZE) if reason is not None else ""
        if not key or not name:
            raise ValueError("a silence needs a component key and the name of who silences")
        if not (math.isfinite(starts_at) and math.isfinite(ends_at) and starts_at < ends_at):
            raise ValueError("a silence must end after it starts")
        async with self._begin(fenced=False) as connection:
            result = await connection.execute(
                insert(silences).values(
                    component=key,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    created_by=name,
                    reason=why or None,
                    created_at=self.clock.wall(),
                )
            )
            await self._revise(connection, "silences")
        return int(result.inserted_primary_key[0])  # type: ignore[index]
