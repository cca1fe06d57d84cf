"""The daemon's side of the store: each check in one transaction, roll-ups kept as it goes,
incidents and alerts, retention.

Every check is committed with its roll-up increments in one transaction, so a ``kill -9`` at any
moment loses at most the check being written and never leaves a roll-up counting a check that is
not stored (or the other way round).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.store.models import (
    TARGET_COMPONENT,
    AlertState,
    CheckRecord,
    Component,
    IncidentEvent,
    IncidentState,
    Status,
)
from monitor.store.schema import (
    alerts,
    checks,
    components,
    incident_events,
    incidents,
    revisions,
    rollups,
    service_checks,
)

HOUR = 3600
DAY = 86400
_UP = (Status.HEALTHY, Status.DEGRADED)


class HistoryWriter:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name

    async def record_check(self, record: CheckRecord) -> None:
        async with self.engine.begin() as connection:
            result = await connection.execute(
                insert(checks).values(
                    target=record.target,
                    at=record.at,
                    status=record.status.value,
                    latency_ms=record.latency_ms,
                    http_status=record.http_status,
                    error=record.error,
                )
            )
            check_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
            if record.services:
                await connection.execute(
                    insert(service_checks),
                    [
                        {
                            "check_id": check_id,
                            "service": s.service,
                            "target": record.target,
                            "at": record.at,
                            "status": s.status.value,
                            "response_ms": s.response_ms,
                            "consecutive_failures": s.consecutive_failures,
                            "breaker_state": s.breaker_state,
                            "details": json.dumps(s.details, default=str) if s.details else None,
                        }
                        for s in record.services
                    ],
                )
            samples = [(TARGET_COMPONENT, record.status, record.latency_ms)]
            samples += [(s.service, s.status, s.response_ms) for s in record.services]
            for service, status, latency in samples:
                for period, length in (("hour", HOUR), ("day", DAY)):
                    await self._bump(
                        connection,
                        record.target,
                        service,
                        period,
                        int(record.at // length) * length,
                        status,
                        latency,
                    )

    async def _bump(
        self,
        connection: AsyncConnection,
        target: str,
        service: str,
        period: str,
        start: int,
        status: Status,
        latency: float | None,
    ) -> None:
        up = 1 if status in _UP else 0
        values = {
            "target": target,
            "service": service,
            "period": period,
            "start": start,
            "checks": 1,
            "up": up,
            "worst": status.severity,
            "latency_sum": latency or 0.0,
            "latency_count": 0 if latency is None else 1,
            "latency_max": latency or 0.0,
        }
        dialect_insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        statement = dialect_insert(rollups).values(**values)
        excluded = statement.excluded
        greatest = func.greatest if self._dialect == "postgresql" else func.max
        statement = statement.on_conflict_do_update(
            index_elements=["target", "service", "period", "start"],
            set_={
                "checks": rollups.c.checks + 1,
                "up": rollups.c.up + excluded.up,
                "worst": greatest(rollups.c.worst, excluded.worst),
                "latency_sum": rollups.c.latency_sum + excluded.latency_sum,
                "latency_count": rollups.c.latency_count + excluded.latency_count,
                "latency_max": greatest(rollups.c.latency_max, excluded.latency_max),
            },
        )
        await connection.execute(statement)

    # -- incidents ---------------------------------------------------------------------------

    async def open_incident(
        self, target: str, service: str, status: Status, at: float, title: str
    ) -> int:
        async with self.engine.begin() as connection:
            result = await connection.execute(
                insert(incidents).values(
                    target=target,
                    service=service,
                    state=IncidentState.OPEN.value,
                    impact=status.value,
                    title=title,
                    opened_at=at,
                    resolved_at=None,
                    updated_at=at,
                )
            )
            incident_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            await self._event(
                connection,
                incident_id,
                IncidentEvent(
                    at=at,
                    kind="opened",
                    status=status,
                    public=True,
                    text=f"We are investigating: {title}.",
                ),
            )
        return incident_id

    async def add_event(self, incident_id: int, event: IncidentEvent) -> None:
        async with self.engine.begin() as connection:
            await self._event(connection, incident_id, event)
            changes: dict[str, object] = {"updated_at": event.at}
            if event.status is not None:
                current = await connection.scalar(
                    select(incidents.c.impact).where(incidents.c.id == incident_id)
                )
                if current is None or event.status.severity > Status.parse(current).severity:
                    changes["impact"] = event.status.value
            await connection.execute(
                update(incidents).where(incidents.c.id == incident_id).values(**changes)
            )

    async def resolve_incident(self, incident_id: int, at: float, text: str) -> None:
        async with self.engine.begin() as connection:
            await self._event(
                connection,
                incident_id,
                IncidentEvent(
                    at=at,
                    kind="resolved",
                    status=Status.HEALTHY,
                    public=True,
                    text=text,
                ),
            )
            await connection.execute(
                update(incidents)
                .where(incidents.c.id == incident_id)
                .values(state=IncidentState.RESOLVED.value, resolved_at=at, updated_at=at)
            )

    async def _event(
        self, connection: AsyncConnection, incident_id: int, event: IncidentEvent
    ) -> None:
        await connection.execute(
            insert(incident_events).values(
                incident_id=incident_id,
                at=event.at,
                kind=event.kind,
                status=event.status.value if event.status is not None else None,
                text=event.text,
                public=event.public,
                actor=event.actor,
            )
        )

    async def record_reset(
        self, target: str, service: str, actor: str, previous_state: str, at: float
    ) -> int | None:
        """Put a breaker reset on the open incident of that service; its id, or None if none."""
        async with self.engine.connect() as connection:
            incident_id = await connection.scalar(
                select(incidents.c.id)
                .where(
                    incidents.c.target == target,
                    incidents.c.service == service,
                    incidents.c.state == IncidentState.OPEN.value,
                )
                .order_by(incidents.c.opened_at.desc())
                .limit(1)
            )
        if incident_id is None:
            return None
        await self.add_event(
            int(incident_id),
            IncidentEvent(
                at=at,
                kind="breaker_reset",
                status=None,
                public=False,
                actor=actor,
                text=f"Circuit breaker reset by {actor} (was {previous_state}).",
            ),
        )
        return int(incident_id)

    async def add_note(
        self, incident_id: int, text: str, *, public: bool, actor: str | None, at: float
    ) -> None:
        await self.add_event(
            incident_id,
            IncidentEvent(
                at=at,
                kind="note",
                status=None,
                text=text,
                public=public,
                actor=actor,
            ),
        )

    # -- alerts ------------------------------------------------------------------------------

    async def fire_alert(
        self, rule: str, target: str, service: str, summary: str, at: float
    ) -> int:
        async with self.engine.begin() as connection:
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
        async with self.engine.begin() as connection:
            await connection.execute(
                update(alerts)
                .where(alerts.c.id == alert_id)
                .values(state=AlertState.RESOLVED.value, resolved_at=at)
            )
            await self._revise(connection, "alerts")

    async def sync_components(self, catalogue: Sequence[Component]) -> None:
        """Replace the catalogue of components (display names, groups, order).

        Row by row as upserts, not DELETE-all then INSERT: two syncs at once (checks of two
        targets discovering services) must not trip over each other's rows."""
        keep = {(c.target, c.service) for c in catalogue}
        async with self.engine.begin() as connection:
            existing = (
                await connection.execute(select(components.c.target, components.c.service))
            ).all()
            for target, service in existing:
                if (target, service) not in keep:
                    await connection.execute(
                        delete(components).where(
                            components.c.target == target, components.c.service == service
                        )
                    )
            for c in catalogue:
                statement = self._insert(components).values(
                    target=c.target,
                    service=c.service,
                    display_name=c.display_name,
                    group_name=c.group,
                    position=c.position,
                )
                await connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=["target", "service"],
                        set_={
                            "display_name": statement.excluded.display_name,
                            "group_name": statement.excluded.group_name,
                            "position": statement.excluded.position,
                        },
                    )
                )
            await self._revise(connection, "catalogue")

    def _insert(self, table: Table) -> Any:
        """The dialect's INSERT, which has ON CONFLICT."""
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)

    async def _revise(self, connection: AsyncConnection, name: str) -> None:
        """Count a write that adds no row with a fresh id, for ``HistoryReader.last_change``."""
        statement = self._insert(revisions).values(name=name, value=1)
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=["name"], set_={"value": revisions.c.value + 1}
            )
        )

    # -- retention ---------------------------------------------------------------------------

    async def apply_retention(
        self, now: float, *, raw_days: float, hourly_days: float, daily_days: float
    ) -> dict[str, int]:
        """Delete raw checks, hourly and daily roll-ups older than their windows."""
        removed: dict[str, int] = {}
        async with self.engine.begin() as connection:
            cutoff = now - raw_days * DAY
            await connection.execute(delete(service_checks).where(service_checks.c.at < cutoff))
            result = await connection.execute(delete(checks).where(checks.c.at < cutoff))
            removed["checks"] = result.rowcount
            for period, days in (("hour", hourly_days), ("day", daily_days)):
                result = await connection.execute(
                    delete(rollups).where(
                        rollups.c.period == period, rollups.c.start < now - days * DAY
                    )
                )
                removed[f"{period}_rollups"] = result.rowcount
        return removed
