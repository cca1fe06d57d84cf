"""Reads of what the store knows about: the targets checked, the component catalogue, and the
change token that caches and live views watch."""

from __future__ import annotations

from sqlalchemy import func, select

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
        order, each with whether the backend marks it critical.

        A store of an older schema (no ``critical``: a status page upgraded before its
        monitor) reads as a catalogue of components none critical."""
        query = select(components).order_by(components.c.position)
        try:
            rows = await self._mappings(query)
        except StoreSchemaMismatch:
            old = [c for c in components.c if c.name != "critical"]
            rows = await self._mappings(query.with_only_columns(*old))
        return [
            Component(
                r["target"],
                r["service"],
                r["display_name"],
                r["group_name"],
                r["position"],
                critical=bool(r.get("critical", False)),
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
