"""Writes of a target's replica set: a replica that left it is retired (not down); its checks so
far are kept, and its row comes back to life if it is seen again (``record_check``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import update

from monitor.store.batch import stored_text
from monitor.store.schema import replicas as replica_states
from monitor.store.writing.base import WriteBase

_CHUNK = 500
"""Keys per statement (SQLite's older builds take at most 999 parameters)."""


class ReplicaWrites(WriteBase):
    async def retire_replicas(self, target: str, replicas: Sequence[str], at: float) -> None:
        """Mark ``replicas`` of ``target`` retired at ``at``: they left its replica set (gone
        from DNS, or from the config). One retired already keeps its first retirement time."""
        keys = sorted({stored_text(key) for key in replicas})
        if not keys:
            return
        async with self._begin() as connection:
            for start in range(0, len(keys), _CHUNK):
                await connection.execute(
                    update(replica_states)
                    .where(
                        replica_states.c.target == target,
                        replica_states.c.replica.in_(keys[start : start + _CHUNK]),
                        replica_states.c.retired_at.is_(None),
                    )
                    .values(retired_at=at)
                )
            await self._revise(connection, "replicas")
