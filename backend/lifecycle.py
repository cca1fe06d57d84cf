"""Start-up and shutdown as the probes see them.

Ready means: keys loaded, migrations applied, the first round of health checks finished, and not
draining. Live means only that the process serves requests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Lifecycle:
    keys_ready: bool = False
    migrated: bool = False
    first_round_done: bool = False
    draining: bool = False

    @property
    def ready(self) -> bool:
        return self.not_ready_reason is None

    @property
    def not_ready_reason(self) -> str | None:
        if self.draining:
            return "shutting down"
        if not self.keys_ready:
            return "starting: signing keys not loaded yet"
        if not self.migrated:
            return "starting: database migrations not applied yet"
        if not self.first_round_done:
            return "starting: first health checks still running"
        return None
