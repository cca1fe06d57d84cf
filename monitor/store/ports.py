"""The store's two ports: what its readers may ask (:class:`HistoryRead`) and what its writer
may do (:class:`HistoryWrite`).

The SQL adapters are :class:`monitor.store.reader.HistoryReader` and
:class:`monitor.store.writer.HistoryWriter`; code that uses the store is written against these
protocols, and catches :class:`monitor.store.errors.StoreError` (every method may raise one)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from monitor.store.models import (
    TARGET_COMPONENT,
    Alert,
    AlertState,
    BarSeries,
    CheckRecord,
    Component,
    ComponentState,
    Incident,
    IncidentComponent,
    IncidentEvent,
    IncidentState,
    LatencyPoint,
    LatestCheck,
    LeaderLease,
    ReplicaCheck,
    ReplicaState,
    Silence,
    Status,
    UptimeBar,
)
from monitor.store.public_models import (
    Delivery,
    DeliveryState,
    Maintenance,
    MaintenanceEvent,
    PublicMessage,
    Subscriber,
)


class HistoryRead(Protocol):
    """Reads of the store; each is one read, and may raise a ``StoreError``."""

    # -- catalogue
    async def targets(self) -> list[str]: ...
    async def components(self) -> list[Component]: ...
    async def last_change(self) -> float: ...

    # -- checks and current states
    async def states(self) -> dict[tuple[str, str], ComponentState]: ...
    async def latest(self, target: str) -> LatestCheck | None: ...
    async def latest_many(self, targets: Sequence[str]) -> dict[str, LatestCheck]: ...
    async def service_since(self, target: str, service: str, status: Status) -> float | None: ...
    async def recent_latencies(
        self, target: str, service: str = TARGET_COMPONENT, *, limit: int = 30
    ) -> list[float | None]: ...
    async def recent_latencies_many(
        self, components: Sequence[tuple[str, str]], *, limit: int = 30
    ) -> dict[tuple[str, str], list[float | None]]: ...

    # -- roll-ups and day strips
    async def bars(
        self,
        target: str,
        service: str = TARGET_COMPONENT,
        *,
        period: str = "day",
        count: int = 90,
        now: float,
    ) -> list[UptimeBar]: ...
    async def bars_many(
        self,
        components: Sequence[tuple[str, str]],
        *,
        period: str = "day",
        count: int = 90,
        now: float,
    ) -> dict[tuple[str, str], list[UptimeBar]]: ...
    async def series_many(
        self,
        components: Sequence[tuple[str, str]],
        *,
        period: str = "day",
        count: int = 90,
        now: float,
    ) -> dict[tuple[str, str], BarSeries]: ...
    async def latency_series(
        self, target: str, service: str = TARGET_COMPONENT, *, hours: int = 24, now: float
    ) -> list[LatencyPoint]: ...
    async def latency_series_many(
        self, components: Sequence[tuple[str, str]], *, hours: int = 24, now: float
    ) -> dict[tuple[str, str], list[LatencyPoint]]: ...

    # -- incidents and alerts
    async def incidents(
        self,
        *,
        state: IncidentState | None = None,
        since: float | None = None,
        limit: int = 50,
        with_events: bool = False,
        and_open: bool = False,
    ) -> list[Incident]: ...
    async def incident(self, incident_id: int) -> Incident | None: ...
    async def alerts(self, *, active_only: bool = True, limit: int = 100) -> list[Alert]: ...
    async def alert(self, alert_id: int) -> Alert | None: ...
    async def unnotified_alerts(self, *, limit: int = 1000) -> list[Alert]: ...
    async def silences(self, *, at: float, limit: int = 1000) -> list[Silence]: ...

    """Silences in force at ``at`` (``starts_at <= at < ends_at``), newest first."""

    async def open_incident_for(self, target: str, service: str) -> Incident | None: ...

    """The open incident whose cause or affected components include this component (the one
    an ack, a silence, a reset or a note is written to), None if none is open."""

    # -- talking to the public (issue #15)
    async def maintenances(
        self,
        *,
        since: float,
        include_cancelled: bool = False,
        unfinished: bool = False,
        limit: int = 100,
    ) -> list[Maintenance]: ...

    """Windows that end at or after ``since`` (upcoming, active, and those ended since), by
    start, each with its components (its events only from :meth:`maintenance`);
    ``unfinished``: also those marked started and not completed, whatever their age."""

    async def maintenance(self, maintenance_id: int) -> Maintenance | None: ...

    """One window with its components and events."""

    async def subscriber(self, subscriber_id: int) -> Subscriber | None: ...
    async def public_message(self, message_id: int) -> PublicMessage | None: ...
    async def due_deliveries(self, *, now: float, limit: int = 100) -> list[Delivery]: ...

    """Pending deliveries whose ``next_at`` has come, oldest first."""

    # -- the fleet: replicas and the leader
    async def replicas(
        self, target: str | None = None, *, include_retired: bool = False
    ) -> list[ReplicaState]: ...
    async def leader(self) -> LeaderLease | None: ...


class HistoryWrite(Protocol):
    """Writes to the store; each may raise a ``StoreError``."""

    # -- checks (with their roll-ups and component states)
    async def record_check(
        self,
        record: CheckRecord,
        *,
        replicas: Sequence[ReplicaCheck] = (),
        new_components: Sequence[Component] = (),
    ) -> CheckRecord: ...
    async def flush(self) -> None: ...

    # -- replicas (their checks go with the target's, in ``record_check``)
    async def retire_replicas(self, target: str, replicas: Sequence[str], at: float) -> None: ...

    # -- incidents
    async def open_incident(
        self,
        target: str,
        service: str,
        status: Status,
        at: float,
        title: str,
        components: Sequence[IncidentComponent] = (),
    ) -> int: ...
    async def set_incident_components(
        self, incident_id: int, components: Sequence[IncidentComponent], at: float
    ) -> None: ...

    """Replace the incident's affected components (each with its worst status so far)."""

    async def retitle_incident(self, incident_id: int, title: str, impact: Status) -> None: ...
    async def add_event(self, incident_id: int, event: IncidentEvent) -> None: ...
    async def resolve_incident(self, incident_id: int, at: float, text: str) -> None: ...
    async def record_reset(
        self, target: str, service: str, actor: str, previous_state: str, at: float
    ) -> int | None: ...
    async def add_note(
        self, incident_id: int, text: str, *, public: bool, actor: str | None, at: float
    ) -> None: ...

    # -- written incidents (issue #15): each queues a public message in its transaction
    async def open_written_incident(
        self,
        title: str,
        components: Sequence[IncidentComponent],
        message: str,
        by: str,
        at: float,
    ) -> int: ...

    """An incident a person opened: origin ``written``, phase ``investigating``, its first
    public ``update`` event carrying ``message``; ``components`` (at least one) each with the
    declared impact's status (``DECLARED_IMPACTS``)."""

    async def update_incident(
        self,
        incident_id: int,
        phase: str,
        message: str,
        by: str,
        at: float,
        components: Sequence[IncidentComponent] | None = None,
    ) -> Incident | None: ...

    """A person's public update (an ``update`` event with its ``phase``). An automatic incident
    is taken over first (a ``takeover`` event, once; ``written_by`` set): the daemon no longer
    resolves it nor writes public text into it. ``resolved`` resolves it; another phase re-opens
    a resolved one. ``components``: replace the affected components. None: no such incident."""

    async def write_postmortem(
        self, incident_id: int, text: str, by: str, at: float
    ) -> Incident | None: ...

    # -- maintenance windows (issue #15)
    async def schedule_maintenance(
        self,
        title: str,
        components: Sequence[str],
        starts_at: float,
        ends_at: float,
        message: str | None,
        by: str,
        at: float,
    ) -> int: ...
    async def cancel_maintenance(
        self, maintenance_id: int, by: str, at: float
    ) -> Maintenance | None: ...

    """Cancel a window not yet completed (one already cancelled is returned as it is); None: no
    such window."""

    async def mark_maintenance(self, maintenance_id: int, kind: str, at: float) -> bool: ...

    """The daemon saw the window ``started`` or ``completed``: set that time once, with its
    event and public message. False if it was already marked (another monitor did it)."""

    async def add_maintenance_event(self, maintenance_id: int, event: MaintenanceEvent) -> None: ...

    # -- subscriptions: the sender's side (the page's side is monitor.store.inbox)
    async def fan_out(self, now: float, *, limit: int = 100) -> int: ...

    """Turn up to ``limit`` queued public messages into one pending delivery per active
    subscriber that follows them (idempotent: one delivery per message and subscriber);
    returns the messages fanned out."""

    async def finish_delivery(
        self,
        delivery_id: int,
        state: DeliveryState,
        at: float,
        *,
        error: str | None = None,
        next_at: float | None = None,
    ) -> None: ...

    """Record an attempt: ``SENT``/``FAILED`` end it; ``PENDING`` with ``next_at`` retries."""

    # -- alerts
    async def fire_alert(
        self, rule: str, target: str, service: str, summary: str, at: float
    ) -> int: ...
    async def resolve_alert(self, alert_id: int, at: float, summary: str | None = None) -> None: ...
    async def update_alert(self, alert_id: int, summary: str, at: float) -> None: ...

    """Re-write a firing alert's summary with the current figures (no notice is owed for it)."""

    async def mark_notified(self, alert_id: int, state: AlertState) -> None: ...
    async def ack_alert(self, alert_id: int, by: str, at: float) -> Alert | None: ...

    """Acknowledge a firing alert (idempotent: a second ack keeps the first's who and when);
    None if there is no such alert. Writes to the incident timeline are the caller's."""

    async def add_silence(
        self, component: str, starts_at: float, ends_at: float, by: str, reason: str | None
    ) -> int: ...

    # -- catalogue and retention
    async def sync_components(self, catalogue: Sequence[Component]) -> None: ...
    async def compact_day_strips(self, now: float) -> int: ...
    async def apply_retention(
        self, now: float, *, raw_days: float, hourly_days: float, daily_days: float
    ) -> dict[str, int]: ...
