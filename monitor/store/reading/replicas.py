"""Reads of the fleet: each replica's latest state, and who leads."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import RowMapping

from monitor.store.models import Instance, LeaderLease, ReplicaState, ServiceSample, Status
from monitor.store.reading.base import ReadBase
from monitor.store.schema import LEADER, monitor_lease, replicas


class ReplicaReads(ReadBase):
    async def replicas(
        self, target: str | None = None, *, include_retired: bool = False
    ) -> list[ReplicaState]:
        """Each replica's latest state (of ``target``, or of every target), sorted by target and
        replica; retired replicas only with ``include_retired``."""
        query = select(replicas).order_by(replicas.c.target, replicas.c.replica)
        if target is not None:
            query = query.where(replicas.c.target == target)
        if not include_retired:
            query = query.where(replicas.c.retired_at.is_(None))
        return [replica_state(row) for row in await self._mappings(query)]

    async def leader(self) -> LeaderLease | None:
        """The leadership lease as stored (None: no monitor has ever led this store)."""
        rows = await self._mappings(select(monitor_lease).where(monitor_lease.c.name == LEADER))
        return lease_of(rows[0]) if rows else None


def replica_state(row: RowMapping) -> ReplicaState:
    instance_id = row["instance_id"]
    return ReplicaState(
        target=row["target"],
        replica=row["replica"],
        instance=(
            Instance(instance_id, row["instance_started_at"]) if instance_id is not None else None
        ),
        status=Status.parse(row["status"]),
        since=row["since"],
        checked_at=row["checked_at"],
        latency_ms=row["latency_ms"],
        error=row["error"],
        services=services_of(row["services"]),
        retired_at=row["retired_at"],
    )


def services_of(text: str | None) -> tuple[ServiceSample, ...]:
    """The samples :func:`monitor.store.batch.services_json` wrote (what does not parse: none)."""
    try:
        entries = json.loads(text or "[]")
    except ValueError:
        return ()
    if not isinstance(entries, list):
        return ()
    return tuple(_sample(entry) for entry in entries if isinstance(entry, dict))


def _sample(entry: dict[str, Any]) -> ServiceSample:
    details = entry.get("details")
    return ServiceSample(
        service=str(entry.get("service", "")),
        status=Status.parse(entry.get("status")),
        response_ms=_number(entry.get("response_ms")),
        consecutive_failures=_integer(entry.get("consecutive_failures")),
        breaker_state=_string(entry.get("breaker_state")),
        details=details if isinstance(details, dict) else {},
    )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _string(value: object) -> str | None:
    return value if isinstance(value, str) else None


def lease_of(row: RowMapping) -> LeaderLease:
    return LeaderLease(
        holder=row["holder"],
        epoch=int(row["epoch"]),
        beat=int(row["beat"]),
        acquired_at=row["acquired_at"],
        renewed_at=row["renewed_at"],
        ttl=row["ttl"],
    )
