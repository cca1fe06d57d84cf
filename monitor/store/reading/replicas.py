"""Reads of the fleet: each replica's latest state, and who leads."""

from __future__ import annotations

from monitor.store.models import LeaderLease, ReplicaState
from monitor.store.reading.base import ReadBase


class ReplicaReads(ReadBase):
    async def replicas(
        self, target: str | None = None, *, include_retired: bool = False
    ) -> list[ReplicaState]:
        """Each replica's latest state (of ``target``, or of every target), sorted by target and
        replica; retired replicas only with ``include_retired``."""
        raise NotImplementedError("replicas lands with migration 0004")

    async def leader(self) -> LeaderLease | None:
        """The leadership lease as stored (None: no monitor has ever led this store)."""
        raise NotImplementedError("leader lands with migration 0004")
