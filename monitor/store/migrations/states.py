"""Filling ``component_states`` from the raw checks, for stores written before it existed.

What the daemon's ``HistoryWriter.backfill_states`` did at every start until the store had
migrations, now run once: by revision 0002, and by :func:`monitor.store.migrate.upgrade_store`
for a store whose states table an older program created but never filled (an older TUI made
tables without filling them). The tables are frozen here, as the migration knows them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

TARGET_COMPONENT = ""
"""The service name under which a target's own status is kept."""

_checks = sa.table(
    "checks",
    sa.column("id", sa.BigInteger),
    sa.column("target", sa.String),
    sa.column("at", sa.Float),
    sa.column("status", sa.String),
)
_service_checks = sa.table(
    "service_checks",
    sa.column("check_id", sa.BigInteger),
    sa.column("service", sa.String),
    sa.column("target", sa.String),
    sa.column("at", sa.Float),
    sa.column("status", sa.String),
)
_states = sa.table(
    "component_states",
    sa.column("target", sa.String),
    sa.column("service", sa.String),
    sa.column("status", sa.String),
    sa.column("since", sa.Float),
    sa.column("checked_at", sa.Float),
)


def backfill_states(connection: Connection) -> int:
    """Each component's state as its checks say: the status of its target's latest check, since
    the first check after the last one with another status. A no-op once the table holds
    anything; the number of states filled in."""
    if connection.scalar(sa.select(sa.func.count()).select_from(_states)):
        return 0
    rows: list[dict[str, Any]] = []
    targets = connection.execute(sa.select(_checks.c.target).distinct()).scalars().all()
    for target in targets:
        latest = connection.execute(
            sa.select(_checks.c.id, _checks.c.at, _checks.c.status)
            .where(_checks.c.target == target)
            .order_by(_checks.c.at.desc(), _checks.c.id.desc())
            .limit(1)
        ).one()
        at = latest.at
        since = _since(connection, _checks, _checks.c.target == target, latest.status)
        rows.append(_state(target, TARGET_COMPONENT, latest.status, since, at))
        services = connection.execute(
            sa.select(_service_checks.c.service, _service_checks.c.status)
            .where(_service_checks.c.check_id == latest.id)
            .order_by(_service_checks.c.service)
        ).all()
        for service, status in services:
            where = sa.and_(
                _service_checks.c.target == target, _service_checks.c.service == service
            )
            since = _since(connection, _service_checks, where, status)
            rows.append(_state(target, service, status, since, at))
    if rows:
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        connection.execute(insert(_states).on_conflict_do_nothing(), rows)
    return len(rows)


def _since(
    connection: Connection, table: sa.TableClause, where: sa.ColumnElement[bool], status: str
) -> float | None:
    last_other = connection.scalar(
        sa.select(sa.func.max(table.c.at)).where(where, table.c.status != status)
    )
    since = connection.scalar(
        sa.select(sa.func.min(table.c.at)).where(
            where, table.c.at > (last_other if last_other is not None else -1.0)
        )
    )
    return float(since) if since is not None else None


def _state(
    target: str, service: str, status: str, since: float | None, at: float
) -> dict[str, Any]:
    return {
        "target": target,
        "service": service,
        "status": status,
        "since": at if since is None else since,
        "checked_at": at,
    }
