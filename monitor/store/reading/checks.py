"""Reads of raw checks and of each component's current state: what the TUI shows of now.

The TUI shows every target at once, so the reads it makes per target or per component have a
``_many`` twin that answers for many in a few statements: each statement is a ``UNION ALL`` of
the one-component query (each arm still one short walk of its index, whatever the history's
length), up to :data:`ARMS_PER_STATEMENT` arms, all on one connection. A fleet of 1,000 targets
was ~8,000 queries a refresh, each a round trip (or a hand-off to aiosqlite's thread and back).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Integer,
    Select,
    bindparam,
    false,
    func,
    literal_column,
    select,
    union_all,
)
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

ARMS_PER_STATEMENT = 200
"""One-component queries per statement: SQLite allows 500 arms in a compound SELECT (and 999
bound values in old builds; an arm binds up to three)."""
IDS_PER_STATEMENT = 500
"""Check ids in one ``IN (...)``: within old SQLite builds' 999 bound values."""

Arm = Callable[[int], Select[Any]]
"""The one-component query of arm ``n``, its values bound by name (``target_<n>`` …)."""


def _each(
    connection: Connection, arm: Arm, values: Sequence[Mapping[str, object]]
) -> Iterator[tuple[int, RowMapping]]:
    """(n, row) for the rows of ``arm`` over each of ``values`` (its n-th item's values), a few
    hundred arms to a statement; rows come back in no promised order."""
    for start in range(0, len(values), ARMS_PER_STATEMENT):
        chunk = values[start : start + ARMS_PER_STATEMENT]
        bound = {
            f"{name}_{n}": value for n, item in enumerate(chunk) for name, value in item.items()
        }
        for row in connection.execute(_compound(arm, len(chunk)), bound).mappings():
            yield start + row["arm"], row


@functools.lru_cache(maxsize=32)
def _compound(arm: Arm, size: int) -> Select[Any] | CompoundSelect[Any]:
    """``size`` arms in one statement, built once: a fleet's refresh builds no expression and
    compiles nothing again (4,000 arms built each time were most of a read's CPU). An arm names
    its place by a column ``arm``; each is wrapped in a subquery, as SQLite takes no ORDER BY or
    LIMIT in a compound's arm."""
    arms = [select(arm(n).subquery()) for n in range(size)]
    return arms[0] if size == 1 else union_all(*arms)


def _arm(n: int) -> Any:
    """The column that names an arm's place: a literal, not a bound value (PostgreSQL would have
    to guess its type, and it spends none of SQLite's bound values)."""
    return literal_column(str(int(n)), Integer).label("arm")


def _last_check(n: int) -> Select[Any]:
    return (
        select(_arm(n), checks)
        .where(checks.c.target == bindparam(f"target_{n}"))
        .order_by(checks.c.at.desc(), checks.c.id.desc())
        .limit(1)
    )


def _since(n: int) -> Select[Any]:
    """Since when the target has been ``status``: the first check after its last other one."""
    target: Any = bindparam(f"target_{n}")
    last_other = (
        select(func.max(checks.c.at))
        .where(checks.c.target == target, checks.c.status != bindparam(f"status_{n}"))
        .scalar_subquery()
    )
    return select(_arm(n), func.min(checks.c.at).label("since")).where(
        checks.c.target == target, checks.c.at > func.coalesce(last_other, -1.0)
    )


_SCHEDULED = checks.c.manual == false()
"""The scheduler's checks: a manual one (the TUI's ``c``) is in no latency series (#14)."""


def _target_latencies(n: int) -> Select[Any]:
    return (
        select(_arm(n), checks.c.at, checks.c.latency_ms.label("value"))
        .where(checks.c.target == bindparam(f"target_{n}"), _SCHEDULED)
        .order_by(checks.c.at.desc())
        .limit(bindparam(f"limit_{n}", type_=Integer))
    )


def _service_latencies(n: int) -> Select[Any]:
    return (
        select(_arm(n), service_checks.c.at, service_checks.c.response_ms.label("value"))
        .join(checks, checks.c.id == service_checks.c.check_id)
        .where(
            service_checks.c.target == bindparam(f"target_{n}"),
            service_checks.c.service == bindparam(f"service_{n}"),
            _SCHEDULED,
        )
        .order_by(service_checks.c.at.desc())
        .limit(bindparam(f"limit_{n}", type_=Integer))
    )


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
        return _latest_check(row, samples, since)

    async def latest_many(self, targets: Sequence[str]) -> dict[str, LatestCheck]:
        """:meth:`latest` of each of ``targets`` (those never checked are left out), in a few
        statements: the last checks, their services, and since when."""
        wanted = list(dict.fromkeys(targets))

        def read(connection: Connection) -> dict[str, LatestCheck]:
            asked = [{"target": target} for target in wanted]
            heads = {wanted[n]: row for n, row in _each(connection, _last_check, asked)}
            found = list(heads)
            runs = [{"target": target, "status": heads[target]["status"]} for target in found]
            began = {found[n]: row["since"] for n, row in _each(connection, _since, runs)}
            samples: dict[int, list[RowMapping]] = {}
            ids = [row["id"] for row in heads.values()]
            for start in range(0, len(ids), IDS_PER_STATEMENT):
                query = (
                    select(service_checks)
                    .where(service_checks.c.check_id.in_(ids[start : start + IDS_PER_STATEMENT]))
                    .order_by(service_checks.c.check_id, service_checks.c.service)
                )
                for sample in connection.execute(query).mappings():
                    samples.setdefault(sample["check_id"], []).append(sample)
            return {
                target: _latest_check(row, samples.get(row["id"], []), began.get(target))
                for target, row in heads.items()
            }

        return await self._read(read) if wanted else {}

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
        """The latest ``limit`` response times of scheduled checks (never a manual one), oldest
        first (for sparklines)."""
        if service == TARGET_COMPONENT:
            query = (
                select(checks.c.latency_ms)
                .where(checks.c.target == target, _SCHEDULED)
                .order_by(checks.c.at.desc())
                .limit(limit)
            )
        else:
            query = (
                select(service_checks.c.response_ms)
                .join(checks, checks.c.id == service_checks.c.check_id)
                .where(
                    service_checks.c.target == target,
                    service_checks.c.service == service,
                    _SCHEDULED,
                )
                .order_by(service_checks.c.at.desc())
                .limit(limit)
            )
        return [row[0] for row in reversed(await self._rows(query))]

    async def recent_latencies_many(
        self, components: Sequence[tuple[str, str]], *, limit: int = 30
    ) -> dict[tuple[str, str], list[float | None]]:
        """:meth:`recent_latencies` of each (target, service) in ``components``, in a few
        statements (an empty list for a component without checks)."""
        wanted = list(dict.fromkeys(components))
        heads = [c for c in wanted if c[1] == TARGET_COMPONENT]
        services = [c for c in wanted if c[1] != TARGET_COMPONENT]

        def read(connection: Connection) -> dict[tuple[str, str], list[float | None]]:
            found: dict[tuple[str, str], list[tuple[float, float | None]]] = {}
            for arm, asked, values in (
                (_target_latencies, heads, [{"target": t, "limit": limit} for t, _ in heads]),
                (
                    _service_latencies,
                    services,
                    [{"target": t, "service": s, "limit": limit} for t, s in services],
                ),
            ):
                for n, row in _each(connection, arm, values):
                    found.setdefault(asked[n], []).append((row["at"], row["value"]))
            return {
                component: [value for _, value in sorted(found.get(component, []), key=_at)]
                for component in wanted
            }

        return await self._read(read) if wanted and limit > 0 else {c: [] for c in wanted}


def _at(found: tuple[float, float | None]) -> float:
    return found[0]


def _latest_check(
    row: RowMapping, samples: Sequence[RowMapping], since: float | None
) -> LatestCheck:
    record = CheckRecord(
        target=row["target"],
        at=row["at"],
        status=Status.parse(row["status"]),
        latency_ms=row["latency_ms"],
        http_status=row["http_status"],
        error=row["error"],
        manual=bool(row["manual"]),
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
