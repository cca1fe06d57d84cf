"""Writes of a target's replica set: replicas that left it are retired (not down)."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.store.writing.base import WriteBase


class ReplicaWrites(WriteBase):
    async def retire_replicas(self, target: str, replicas: Sequence[str], at: float) -> None:
        """Mark ``replicas`` of ``target`` retired at ``at``: they left its replica set."""
        raise NotImplementedError("retire_replicas lands with migration 0004")
