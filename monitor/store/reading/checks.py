"""Reads of raw checks and of each component's current state: what the TUI shows of now."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, RowMapping

from monitor.store.models import (
    TARGET_COMPONENT,
    CheckRecord,
    ComponentState,
    LatestCheck,
    ServiceSample,
    Status,
)
from monitor.store.reading.base import ReadBase
from monitor.store.schema import checks, component_states, service_checks


class CheckReads(ReadBase):
    async def states(self) -> dict[tuple[str, str], ComponentState]:
        """Every component's current status and since when, keyed by (target, service)."""
        rows = await self._rows(
            select(
                component_states.c.target,
                component_states.c.service,
                component_states.c.status,
                component_states.c.since,
                component_states.c.checked_at,
            )
        )
        return {
            (target, service): ComponentState(Status.parse(status), since, checked_at)
            for target, service, status, since, checked_at in rows
        }

    async def latest(self, target: str) -> LatestCheck | None:
        """The target's last check, its services, and since when its status has been what it is."""

        def read(
            connection: Connection,
        ) -> tuple[RowMapping, Sequence[RowMapping], float | None] | None:
            row = (
                connection.execute(
                    select(checks)
                    .where(checks.c.target == target)
                    .order_by(checks.c.at.desc(), checks.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            samples = (
                connection.execute(
                    select(service_checks)
                    .where(service_checks.c.check_id == row["id"])
                    .order_by(service_checks.c.service)
                )
                .mappings()
                .all()
            )
            last_other = connection.scalar(
                select(func.max(checks.c.at)).where(
                    checks.c.target == target, checks.c.status != row["status"]
                )
            )
            since = connection.scalar(
                select(func.min(checks.c.at)).where(
                    checks.c.target == target,
                    checks.c.at > (last_other if last_other is not None else -1.0),
                )
            )
            return row, samples, since

        found = await self._read(read)
        if found is None:
            return None
        row, samples, since = found
        record = CheckRecord(
            target=target,
            at=row["at"],
            status=Status.parse(row["status"]),
            latency_ms=row["latency_ms"],
            http_status=row["http_status"],
            error=row["error"],
            services=tuple(
                ServiceSample(
                    service=s["service"],
                    status=Status.parse(s["status"]),
                    response_ms=s["response_ms"],
                    consecutive_failures=s["consecutive_failures"],
                    breaker_state=s["breaker_state"],
                    details=json.loads(s["details"]) if s["details"] else {},
                )
                for s in samples
            ),
        )
        return LatestCheck(record, since)

    async def service_since(self, target: str, service: str, status: Status) -> float | None:
        """Since when ``service`` has been ``status`` without a break (None if never seen)."""

        def read(connection: Connection) -> float | None:
            last_other = connection.scalar(
                select(func.max(service_checks.c.at)).where(
                    service_checks.c.target == target,
                    service_checks.c.service == service,
                    service_checks.c.status != status.value,
                )
            )
            since = connection.scalar(
                select(func.min(service_checks.c.at)).where(
                    service_checks.c.target == target,
                    service_checks.c.service == service,
                    service_checks.c.at > (last_other if last_other is not None else -1.0),
                )
            )
            return float(since) if since is not None else None

        return await self._read(read)

    async def recent_latencies(
        self, target: str, service: str = TARGET_COMPONENT, *, limit: int = 30
    ) -> list[float | None]:
        """The latest ``limit`` response times, oldest first (for sparklines)."""
        if service == TARGET_COMPONENT:
            query = (
                select(checks.c.latency_ms)
                .where(checks.c.target == target)
                .order_by(checks.c.at.desc())
                .limit(limit)
            )
        else:
            query = (
                select(service_checks.c.response_ms)
                .where(
                    service_checks.c.target == target,
                    service_checks.c.service == service,
                )
                .order_by(service_checks.c.at.desc())
                .limit(limit)
            )
        return [row[0] for row in reversed(await self._rows(query))]
