"""Which backend process this is: its name and when it started (ARCHITECTURE §6, §11).

Breaker state and counters belong to one process, so whoever reads them — the monitor, a log
pipeline, an on-call engineer — must know which process said so and whether it restarted since.
``create_app`` names its process once (:class:`BackendInstance`, from ``QUESTCITY_INSTANCE_ID``
and the app's clock); ``/detailed`` shows it to staff, and every JSON log line and the breaker
reset's audit line carry its id.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from shared.resilience import Clock


@dataclass(frozen=True, slots=True)
class BackendInstance:
    id: str
    """``QUESTCITY_INSTANCE_ID`` (validated by the settings: a safe, bounded name)."""
    started_at: float
    """Seconds since the epoch, from the app's clock when ``create_app`` ran (``/detailed``'s
    ``timestamp`` uses the same unit): a new value means a new process, counters from zero."""

    @classmethod
    def starting_now(cls, instance_id: str, clock: Clock) -> BackendInstance:
        return cls(instance_id, clock.wall())

    def as_dict(self) -> dict[str, object]:
        """``/detailed``'s ``instance``."""
        return {"id": self.id, "started_at": self.started_at}


def instance_of(request: Request) -> BackendInstance:
    """The instance ``create_app`` stored on the app serving ``request``."""
    instance = request.app.state.instance
    if not isinstance(instance, BackendInstance):
        raise RuntimeError("the app was not built by create_app: it has no instance")
    return instance
