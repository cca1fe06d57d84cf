"""The rows one transaction writes for a batch of checks.

Pure functions, so the folding can be tested without a database: roll-up increments are summed
per (target, service, period, start), and each component's current state is folded from the
batch in time order, so a batch of any size costs one statement per table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.store.models import TARGET_COMPONENT, CheckRecord, ReplicaCheck, ServiceSample, Status

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
        "manual": record.manual,
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
    """The roll-up increments of ``records``, one row per (target, service, period, start).
    A manual check adds nothing: uptime, bars and charts are the scheduler's checks alone (a
    cold check on demand is not the service's latency)."""
    rows: dict[tuple[str, str, str, int], Row] = {}
    for record in records:
        if record.manual:
            continue
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


# -- replicas -----------------------------------------------------------------------------------

MAX_KEY = 200
"""Replica keys, instance ids and errors are stored cut at this many characters (their columns'
width): they come from outside (DNS, a target's answer)."""
MAX_SERVICES_JSON = 64 * 1024
"""A replica's services as JSON, at most this many characters: past it their details are
dropped (the figures kept), then the samples that do not fit (never the check itself)."""


@dataclass(frozen=True, slots=True)
class ReplicaBatch:
    """A check's replicas, with the name of the target they belong to."""

    target: str
    replicas: Sequence[ReplicaCheck]


def services_json(services: Sequence[ServiceSample]) -> str:
    """``services`` as compact JSON, details and all, within :data:`MAX_SERVICES_JSON`."""
    entries = [_service_entry(s, details=True) for s in services]
    encoded = _compact(entries)
    if len(encoded) <= MAX_SERVICES_JSON:
        return encoded
    entries = [_service_entry(s, details=False) for s in services]
    while entries and len(encoded := _compact(entries)) > MAX_SERVICES_JSON:
        entries.pop()
    return encoded if entries else "[]"


def _service_entry(sample: ServiceSample, *, details: bool) -> dict[str, object]:
    return {
        "service": sample.service,
        "status": sample.status.value,
        "response_ms": sample.response_ms,
        "consecutive_failures": sample.consecutive_failures,
        "breaker_state": sample.breaker_state,
        "details": sample.details if details else {},
    }


def _compact(entries: list[dict[str, object]]) -> str:
    return json.dumps(entries, separators=(",", ":"), default=str)


def stored_text(value: str) -> str:
    """``value`` as a replica's text column holds it: cut to :data:`MAX_KEY` characters, without
    NUL (which PostgreSQL's text cannot hold) or what UTF-8 cannot encode (a lone surrogate),
    so that a replica's row is never what the database refuses."""
    cleaned = value.replace("\x00", "").encode("utf-8", "ignore").decode("utf-8")
    return cleaned[:MAX_KEY]


def _bounded(value: str | None) -> str | None:
    return None if value is None else stored_text(value)


def _measure(value: float | None) -> float | None:
    """A figure a column can take, or None (as :func:`monitor.store.writing.checks.refused_check`
    keeps only those): a replica's odd figure must not sink its target's check."""
    return value if value is not None and math.isfinite(value) and 0 <= value < 1e12 else None


def _time(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) and abs(value) < 1e12 else None


def _http_status(value: int | None) -> int | None:
    return value if value is not None and 100 <= value <= 999 else None


def _replica_fields(target: str, replica: ReplicaCheck) -> Row:
    record = replica.record
    instance = replica.instance
    return {
        "target": target,
        "replica": stored_text(replica.replica),
        "instance_id": _bounded(instance.id) if instance is not None else None,
        "instance_started_at": _time(instance.started_at) if instance is not None else None,
        "status": record.status.value,
        "latency_ms": _measure(record.latency_ms),
        "error": _bounded(record.error),
        "services": services_json(record.services),
    }


@dataclass(frozen=True, slots=True)
class ReplicaRows:
    checks: list[Row]
    """One ``replica_checks`` row per replica of each check."""
    states: StateRows
    """Each replica's latest state after the batch."""


def replica_rows(batches: Iterable[ReplicaBatch]) -> ReplicaRows:
    """The replicas' raw rows, and their latest states folded in time order like
    :func:`state_rows`: ``since`` moves only when a replica's status changes; a replica seen is
    not retired (any more). Each replica's fields are made once, for both."""
    seen = [
        (replica.record, _replica_fields(batch.target, replica))
        for batch in batches
        for replica in batch.replicas
    ]
    checks = [
        {**fields, "at": record.at, "http_status": _http_status(record.http_status)}
        for record, fields in seen
    ]
    folded: dict[tuple[str, str], Row] = {}
    changed: set[tuple[str, str]] = set()
    for record, fields in sorted(seen, key=lambda pair: pair[0].at):
        key = (fields["target"], fields["replica"])
        row = folded.get(key)
        if row is None:
            folded[key] = {
                **fields,
                "since": record.at,
                "checked_at": record.at,
                "retired_at": None,
            }
            continue
        if row["status"] != fields["status"]:
            row["since"] = record.at
            changed.add(key)
        row.update(fields, checked_at=record.at)
    return ReplicaRows(
        checks,
        StateRows(
            continuing=[row for key, row in folded.items() if key not in changed],
            changed=[row for key, row in folded.items() if key in changed],
        ),
    )
