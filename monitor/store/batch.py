"""The rows one transaction writes for a batch of checks.

Pure functions, so the folding can be tested without a database: roll-up increments are summed
per (target, service, period, start), and each component's current state is folded from the
batch in time order, so a batch of any size costs one statement per table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.store.models import TARGET_COMPONENT, CheckRecord, Status

HOUR = 3600
DAY = 86400
PERIODS = (("hour", HOUR), ("day", DAY))
_UP = (Status.HEALTHY, Status.DEGRADED)

Row = dict[str, Any]


def check_row(record: CheckRecord) -> Row:
    return {
        "target": record.target,
        "at": record.at,
        "status": record.status.value,
        "latency_ms": record.latency_ms,
        "http_status": record.http_status,
        "error": record.error,
    }


def service_rows(record: CheckRecord, check_id: int) -> list[Row]:
    return [
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
    ]


def samples(record: CheckRecord) -> list[tuple[str, Status, float | None]]:
    """The target itself and each of its services, as (service, status, latency)."""
    return [
        (TARGET_COMPONENT, record.status, record.latency_ms),
        *((s.service, s.status, s.response_ms) for s in record.services),
    ]


def rollup_rows(records: Iterable[CheckRecord]) -> list[Row]:
    """The roll-up increments of ``records``, one row per (target, service, period, start)."""
    rows: dict[tuple[str, str, str, int], Row] = {}
    for record in records:
        for service, status, latency in samples(record):
            for period, length in PERIODS:
                start = int(record.at // length) * length
                key = (record.target, service, period, start)
                row = rows.get(key)
                if row is None:
                    row = rows[key] = {
                        "target": record.target,
                        "service": service,
                        "period": period,
                        "start": start,
                        "checks": 0,
                        "up": 0,
                        "worst": 0,
                        "latency_sum": 0.0,
                        "latency_count": 0,
                        "latency_max": 0.0,
                    }
                row["checks"] += 1
                row["up"] += 1 if status in _UP else 0
                row["worst"] = max(row["worst"], status.severity)
                if latency is not None:
                    row["latency_sum"] += latency
                    row["latency_count"] += 1
                    row["latency_max"] = max(row["latency_max"], latency)
    return list(rows.values())


@dataclass(frozen=True, slots=True)
class StateRows:
    continuing: list[Row]
    """Components whose status did not change within the batch: their ``since`` is kept if the
    stored status is the same, and is the batch's first sighting otherwise."""
    changed: list[Row]
    """Components whose status changed within the batch: ``since`` is the last change."""


def state_rows(records: Sequence[CheckRecord]) -> StateRows:
    """Each component's status after ``records``, since when, and when it was last seen.

    A target that did not answer (unreachable) has no service samples; its services keep their
    last state, and readers see from ``checked_at`` that the target's check is newer."""
    folded: dict[tuple[str, str], Row] = {}
    changed: set[tuple[str, str]] = set()
    for record in sorted(records, key=lambda r: r.at):
        for service, status, _latency in samples(record):
            key = (record.target, service)
            row = folded.get(key)
            if row is None:
                folded[key] = {
                    "target": record.target,
                    "service": service,
                    "status": status.value,
                    "since": record.at,
                    "checked_at": record.at,
                }
                continue
            if row["status"] != status.value:
                row["status"] = status.value
                row["since"] = record.at
                changed.add(key)
            row["checked_at"] = record.at
    return StateRows(
        continuing=[row for key, row in folded.items() if key not in changed],
        changed=[row for key, row in folded.items() if key in changed],
    )
