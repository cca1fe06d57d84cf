"""Writes of the component catalogue (display names, groups, order, the kind of a ``[[checks]]``
entry and whether the page shows it) from the daemon's config."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select

from monitor.store.models import Component
from monitor.store.schema import components
from monitor.store.writing.base import WriteBase


class CatalogueWrites(WriteBase):
    async def sync_components(self, catalogue: Sequence[Component]) -> None:
        """Replace the catalogue of components (display names, groups, order, kinds, publicity):
        a component the config changed is written as it now says (a check made private is no
        longer public from this sync on), one it no longer names is deleted.

        Upserts and deletes of the rows that differ, not DELETE-all then INSERT: two syncs at
        once (two daemons starting) must not trip over each other's rows."""
        keep = {(c.target, c.service) for c in catalogue}
        async with self._begin() as connection:
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
            await self._upsert_components(connection, catalogue, with_critical=False)
            await self._revise(connection, "catalogue")
