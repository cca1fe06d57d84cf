"""What people declare beside the checks (issue #15): maintenance windows, and the impact of the
incidents they write, applied to the components the page shows.

**Maintenance windows** become :class:`MaintenanceView` values in Statuspage's terms: ``scheduled``
before the start, ``in_progress`` from the start until the end, ``completed`` after it. Their
``incident_updates`` are made from what the store records: the window's message when it was
scheduled, then Statuspage's stock words when it started and completed. A **cancelled** window
is never upcoming nor active; it stays in ``scheduled-maintenances.json`` as ``completed`` (there
is no "cancelled" status in Statuspage's set) with a last update saying it was cancelled, so an
integration that saw it coming sees it end rather than vanish. ``verifying`` is never used: the
window's end is its schedule's.

**Component state** (:func:`with_declared`): a component covered by an active window reads
``under_maintenance``; one listed by an open incident whose impact a person declared reads at
least that impact, however well its checks go: a person knows things the checks do not. A person
declared it for a written incident, and for an automatic one only once an update of theirs
replaced its components; an automatic incident merely taken over (its components the worst the
checks saw) holds nothing down: "monitoring, fix deployed" with green checks shows the measured
status, not the outage of an hour ago. A component under maintenance counts for nothing in its
group's and the page's condition (planned work is not an outage): the page's headline and
``status.indicator`` come from the others, the page shows the active windows in a section of
their own below the headline, and when every published component is under maintenance the
headline reads "Under maintenance" (indicator ``none``, Statuspage's set has no maintenance
indicator).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from monitor.i18n import N_
from monitor.impact import incident_conditions
from monitor.store.models import (
    TARGET_COMPONENT,
    Incident,
    IncidentComponent,
    IncidentOrigin,
    IncidentState,
    split_component_key,
)
from monitor.store.public_models import Maintenance
from statuspage.model import ComponentView, GroupView, opaque_id
from statuspage.text import NOTE_LIMIT, clean
from statuspage.vocabulary import Condition


class MaintenanceStatus(enum.StrEnum):
    """Statuspage's scheduled-maintenance statuses."""

    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    VERIFYING = "verifying"
    COMPLETED = "completed"


STARTED = N_(
    "Scheduled maintenance is currently in progress. We will provide updates as necessary."
)
COMPLETED = N_("The scheduled maintenance has been completed.")
CANCELLED = N_("This scheduled maintenance has been cancelled.")
"""The stock words of a window's updates (Statuspage's own for the first two). English in the
JSON; the page and the feed translate them."""


@dataclass(frozen=True, slots=True)
class MaintenanceUpdate:
    id: str
    status: MaintenanceStatus
    body: str
    at: float
    stock: bool
    """``body`` is one of the stock texts above (translated where shown), not a person's."""


@dataclass(frozen=True, slots=True)
class MaintenanceView:
    number: int
    """The store's id (``questcity maintenance cancel NUMBER``; the page's anchor)."""
    name: str
    message: str | None
    status: MaintenanceStatus
    scheduled_for: float
    scheduled_until: float
    created_at: float
    updated_at: float
    resolved_at: float | None
    cancelled: bool
    components: tuple[ComponentView, ...]
    updates: tuple[MaintenanceUpdate, ...]
    """Newest first, as Statuspage lists them."""

    @property
    def id(self) -> str:
        return opaque_id("maintenance", str(self.number))

    @property
    def active(self) -> bool:
        return self.status is MaintenanceStatus.IN_PROGRESS

    @property
    def upcoming(self) -> bool:
        return self.status is MaintenanceStatus.SCHEDULED

    @property
    def anchor(self) -> str:
        """The page's fragment for it (its ``shortlink``)."""
        return f"maintenance-{self.number}"


def covered(window: Maintenance, views: Iterable[ComponentView]) -> tuple[ComponentView, ...]:
    """The components a window names (a target's key covers its services), in page order."""
    keys = [split_component_key(key) for key in window.components]
    return tuple(
        view
        for view in views
        if any(
            target == view.target and (service in (TARGET_COMPONENT, view.service))
            for target, service in keys
        )
    )


def build_maintenance(
    window: Maintenance, views: Sequence[ComponentView], now: float
) -> MaintenanceView:
    cancelled_at = window.cancelled_at
    if cancelled_at is not None and cancelled_at >= window.ends_at:
        cancelled_at = None  # cancelled once it had ended: it ran its course
    updates: list[MaintenanceUpdate] = []
    tag = str(window.id)

    def add(kind: str, status: MaintenanceStatus, body: str, at: float, stock: bool) -> None:
        updates.append(
            MaintenanceUpdate(opaque_id("maintenance-update", tag, kind), status, body, at, stock)
        )

    message = clean(window.message or "", NOTE_LIMIT)
    add(
        "scheduled",
        MaintenanceStatus.SCHEDULED,
        message or clean(window.title),
        window.created_at,
        stock=False,
    )
    resolved_at: float | None = None
    if cancelled_at is not None:
        status = MaintenanceStatus.COMPLETED
        if cancelled_at > window.starts_at:  # cut short: it had started
            add("started", MaintenanceStatus.IN_PROGRESS, STARTED, _started(window), True)
        add("cancelled", MaintenanceStatus.COMPLETED, CANCELLED, cancelled_at, True)
        resolved_at = cancelled_at
    elif now < window.starts_at:
        status = MaintenanceStatus.SCHEDULED
    else:
        add("started", MaintenanceStatus.IN_PROGRESS, STARTED, _started(window), True)
        status = MaintenanceStatus.IN_PROGRESS
        if now >= window.ends_at:
            status = MaintenanceStatus.COMPLETED
            resolved_at = window.completed_at or window.ends_at
            add("completed", MaintenanceStatus.COMPLETED, COMPLETED, resolved_at, True)
    updates.sort(key=lambda u: u.at)
    return MaintenanceView(
        number=window.id,
        name=clean(window.title) or "Maintenance",
        message=message or None,
        status=status,
        scheduled_for=window.starts_at,
        scheduled_until=window.ends_at,
        created_at=window.created_at,
        updated_at=updates[-1].at,
        resolved_at=resolved_at,
        cancelled=cancelled_at is not None,
        components=covered(window, views),
        updates=tuple(reversed(updates)),
    )


def _started(window: Maintenance) -> float:
    """When the window started: when the daemon saw it start, or its schedule's start."""
    started = window.started_at
    return started if started is not None and started >= window.starts_at else window.starts_at


def declares(incident: Incident) -> bool:
    """Whether a person declared the impact of ``incident``'s components: a written incident,
    or an automatic one an update replaced the components of (its event carries their status,
    :meth:`~monitor.store.ports.HistoryWrite.update_incident`)."""
    if incident.origin is IncidentOrigin.WRITTEN:
        return True
    return any(e.kind == "update" and e.status is not None for e in incident.events)


def declared(incidents: Iterable[Incident]) -> dict[tuple[str, str], Condition]:
    """Per component, the worst impact an open incident declares for it (:func:`declares`)."""
    raised: dict[tuple[str, str], Condition] = {}
    for incident in incidents:
        if incident.state is not IncidentState.OPEN or not declares(incident):
            continue
        listed = incident.components or (  # listed nothing before #14: its cause
            IncidentComponent(incident.target, incident.service, incident.impact),
        )
        for component, condition in zip(listed, incident_conditions(listed), strict=True):
            key = (component.target, component.service)
            if condition.value > raised.get(key, Condition.NO_DATA).value:
                raised[key] = condition
    return raised


def with_declared(
    groups: tuple[GroupView, ...],
    incidents: Sequence[Incident],
    windows: Sequence[Maintenance],
    now: float,
) -> tuple[GroupView, ...]:
    """``groups`` with every component's state as people declared it (see the module's
    docstring); the same groups when nobody declared anything (the common case: cheap)."""
    raised = declared(incidents)
    active = [w for w in windows if w.active(now)]
    if not raised and not active:
        return groups
    opened = {
        (c.target, c.service): i.opened_at
        for i in incidents
        if i.state is IncidentState.OPEN
        for c in (*i.components, IncidentComponent(i.target, i.service, i.impact))
    }
    changed = []
    for group in groups:
        members = []
        for view in group.components:
            floor = raised.get(view.key)
            if floor is not None and floor.value > view.condition.value:
                view = replace(view, condition=floor, since=opened.get(view.key, view.since))
            window = next((w for w in active if w.covers(view.target, view.service, now)), None)
            if window is not None:
                view = replace(view, maintenance=True, since=window.starts_at)
            members.append(view)
        changed.append(replace(group, components=tuple(members)))
    return tuple(changed)
