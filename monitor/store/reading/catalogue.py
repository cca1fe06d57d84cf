"""Reads of what the store knows about: the targets checked, the component catalogue, and the
change token that caches and live views watch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, func, select

from monitor.store.errors import StoreSchemaMismatch
from monitor.store.models import TARGET_COMPONENT, Component
from monitor.store.reading.base import ReadBase
from monitor.store.schema import (
    alerts,
    checks,
    component_states,
    components,
    incident_events,
    revisions,
)


class CatalogueReads(ReadBase):
    async def targets(self) -> list[str]:
        """Every target that has been checked."""
        rows = await self._rows(
            select(component_states.c.target).where(component_states.c.service == TARGET_COMPONENT)
        )
        return sorted(row[0] for row in rows)

    async def components(self) -> list[Component]:
        """The catalogue the daemon wrote from its config (and its checks found), in display
        order, each with whether the backend marks it critical, its check's kind (None: a target
        of the health API or its service) and whether the status page shows it.

        A store of an older schema (a status page upgraded before its monitor) reads as what it
        holds: before 0007 (no ``kind``, ``public``), targets and services alone, every one
        public; before 0005 (no ``critical``), none critical."""
        rows = await self._catalogue_rows()
        return [
            Component(
                r["target"],
                r["service"],
                r["display_name"],
                r["group_name"],
                r["position"],
                critical=bool(r.get("critical", False)),
                kind=r.get("kind"),
                public=bool(r.get("public", True)),
            )
            for r in rows
        ]

    async def last_change(self) -> float:
        """A value that grows whenever anything is written (for caches and live refresh).

        Each table's newest id is read on its own: ``max()`` over a join of empty and non-empty
        tables would be NULL until every table had a row."""
        newest = [
            select(func.coalesce(func.max(table.c.id), 0)).scalar_subquery()
            for table in (checks, incident_events, alerts)
        ]
        newest.append(select(func.coalesce(func.sum(revisions.c.value), 0)).scalar_subquery())
        rows = await self._rows(select(*newest))
        return float(sum(rows[0])) if rows else 0.0

    async def _catalogue_rows(self) -> Sequence[RowMapping]:
        """The catalogue's rows with every column the store has (:data:`_NEWER_COLUMNS`)."""
        query = select(components).order_by(components.c.position)
        *newer, oldest = _NEWER_COLUMNS
        for missing in newer:
            try:
                return await self._mappings(query.with_only_columns(*_without(missing)))
            except StoreSchemaMismatch:
                continue  # (on PostgreSQL the failed statement spoilt only its own transaction)
        return await self._mappings(query.with_only_columns(*_without(oldest)))


_NEWER_COLUMNS: tuple[frozenset[str], ...] = (
    frozenset(),
    frozenset({"kind", "public"}),  # revision 0007 (#16: checks)
    frozenset({"kind", "public", "critical"}),  # revision 0005 (#14: signals)
)
"""The catalogue's columns an older store lacks, newest schema first."""


def _without(missing: frozenset[str]) -> list[ColumnElement[Any]]:
    return [c for c in components.c if c.name not in missing]
