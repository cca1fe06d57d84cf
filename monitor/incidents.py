"""Incidents from state changes: opened when a component leaves healthy for ``open_after`` checks,
resolved after ``resolve_after`` healthy checks, with every state change on its timeline."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from monitor.config import IncidentRules, MonitorConfig
from monitor.store import (
    TARGET_COMPONENT,
    CheckRecord,
    HistoryRead,
    HistoryWrite,
    IncidentEvent,
    IncidentState,
    Status,
)

logger = logging.getLogger("monitor.incidents")

_WORDS = {
    Status.DEGRADED: "degraded",
    Status.UNHEALTHY: "down",
    Status.UNREACHABLE: "unreachable",
    Status.UNKNOWN: "in an unknown state",
}


@dataclass
class _Component:
    bad_streak: int = 0
    good_streak: int = 0
    last_status: Status = Status.UNKNOWN
    incident_id: int | None = None


class IncidentTracker:
    def __init__(self, config: MonitorConfig, writer: HistoryWrite) -> None:
        self._config = config
        self._rules: IncidentRules = config.incidents
        self._writer = writer
        self._components: dict[tuple[str, str], _Component] = {}

    async def resume(self, reader: HistoryRead) -> None:
        """Pick up the incidents left open by a previous run."""
        for incident in await reader.incidents(state=IncidentState.OPEN, limit=1000):
            component = self._component(incident.target, incident.service)
            component.incident_id = incident.id
            component.last_status = incident.impact

    def _component(self, target: str, service: str) -> _Component:
        return self._components.setdefault((target, service), _Component())

    async def observe(self, record: CheckRecord) -> None:
        samples = [(TARGET_COMPONENT, record.status)]
        samples += [(s.service, s.status) for s in record.services]
        for service, status in samples:
            await self._step(record.target, service, status, record.at)

    async def _step(self, target: str, service: str, status: Status, at: float) -> None:
        component = self._component(target, service)
        previous = component.last_status
        component.last_status = status
        if status is Status.HEALTHY:
            component.good_streak += 1
            component.bad_streak = 0
        elif status is not Status.UNKNOWN:
            component.bad_streak += 1
            component.good_streak = 0
        if component.incident_id is None:
            if component.bad_streak >= self._rules.open_after:
                title = f"{self._title(target, service)} is {_WORDS.get(status, status.value)}"
                component.incident_id = await self._writer.open_incident(
                    target, service, status, at, title
                )
                logger.warning(
                    "incident opened: %s",
                    title,
                    extra={
                        "event": "incident_opened",
                        "target": target,
                        "service": service,
                        "status": status.value,
                        "incident": component.incident_id,
                    },
                )
            return
        if component.good_streak >= self._rules.resolve_after:
            await self._writer.resolve_incident(
                component.incident_id, at, f"{self._title(target, service)} is operating normally."
            )
            logger.info(
                "incident resolved",
                extra={
                    "event": "incident_resolved",
                    "incident": component.incident_id,
                },
            )
            component.incident_id = None
        elif status is not previous and status is not Status.UNKNOWN:
            await self._writer.add_event(
                component.incident_id,
                IncidentEvent(
                    at=at,
                    kind="state_change",
                    status=status,
                    public=True,
                    text=f"{self._title(target, service)} is now {status.value}.",
                ),
            )

    def _title(self, target: str, service: str) -> str:
        try:
            configured = self._config.target(target)
        except KeyError:
            return service or target
        return (
            configured.title if service == TARGET_COMPONENT else configured.service_title(service)
        )
