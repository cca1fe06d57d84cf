"""The store's values for talking to the public (issue #15): maintenance windows, subscribers,
the messages queued for them and their deliveries. Beside :mod:`monitor.store.models` (checks,
incidents, alerts, the fleet), which this module builds on."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace

from monitor.store.models import Component, Incident, IncidentComponent, split_component_key


@dataclass(frozen=True, slots=True)
class MaintenanceEvent:
    at: float
    kind: str
    """``started``, ``completed``, ``cancelled``; ``held_alert`` and ``held_incident`` (an alert
    or an automatic incident the window held back, ``text`` says which and why);
    ``incident_opened`` (the window ended with a component still down: ``text`` names the
    incident)."""
    text: str


@dataclass(frozen=True, slots=True)
class Maintenance:
    """A maintenance window: its components read ``under_maintenance`` from ``starts_at`` until
    ``ends_at`` (or its cancellation), and their alerts and automatic incidents are held."""

    id: int
    title: str
    message: str | None
    components: tuple[str, ...]
    """Component keys (``TARGET``, ``TARGET/SERVICE``); a target's key covers its services."""
    starts_at: float
    ends_at: float
    created_by: str
    created_at: float
    cancelled_at: float | None = None
    cancelled_by: str | None = None
    started_at: float | None = None
    """When the daemon saw the window start (and told subscribers); None: not yet."""
    completed_at: float | None = None
    """When the daemon saw it end (and told subscribers, and opened an incident for a component
    still down); None: not yet."""
    events: tuple[MaintenanceEvent, ...] = ()

    def active(self, at: float) -> bool:
        return self.cancelled_at is None and self.starts_at <= at < self.ends_at

    def upcoming(self, at: float) -> bool:
        return self.cancelled_at is None and at < self.starts_at

    def covers(self, target: str, service: str, at: float) -> bool:
        """Whether the component (target, service) is under this window's maintenance at ``at``."""
        if not self.active(at):
            return False
        for key in self.components:
            covered_target, covered_service = split_component_key(key)
            if covered_target == target and (not covered_service or covered_service == service):
                return True
        return False


def follows(followed: tuple[str, ...], keys: tuple[str, ...]) -> bool:
    """Whether a subscriber following ``followed`` (empty: every component) is told of a message
    about ``keys`` (empty: no component in particular, everyone is told). The one copy of the
    rule (the fan-out uses it too): a key matches itself, a target's key and its services'
    match each other both ways (a follower of ``T`` hears of ``T/s``; a follower of ``T/s``
    hears of ``T`` as a whole, as a window on all of ``T``, which the page shows on ``T/s``)."""
    if not followed or not keys:
        return True
    return any(_related(mine, key) for mine in followed for key in keys)


def _related(a: str, b: str) -> bool:
    a_target, a_service = split_component_key(a)
    b_target, b_service = split_component_key(b)
    return a_target == b_target and (not a_service or not b_service or a_service == b_service)


# -- what is public (#16) -------------------------------------------------------------------------
#
# A ``[[checks]]`` entry is public only when its config says ``public = true``; targets and their
# services always are. The one rule for the status page (each output is made from what it reads
# through these) and the subscribers' fan-out. A component the catalogue no longer names (a target
# taken out of the config) is not private: its incidents stay public, as before #16. A private
# check's incidents exist only for a check made private after it had some (the daemon opens
# incidents for public checks only, people may name public components only): the catalogue's
# flag is what hides them, and making the check public again shows them again.

PrivateKeys = frozenset[tuple[str, str]]
"""(target, service) of each component the public must not hear of."""


def private_keys(catalogue: Iterable[Component]) -> PrivateKeys:
    return frozenset((c.target, c.service) for c in catalogue if not c.public)


def public_incident(incident: Incident, private: PrivateKeys) -> Incident | None:
    """``incident`` with its public components alone, the first its cause and its impact the
    worst of theirs; None when none of them is public. (An automatic incident whose cause became
    private but which lists public components too — a person replaced its components — is then
    told with the first public one as its cause.)"""
    if not private:
        return incident  # the common case: nothing to leave out
    listed = incident.components or (  # an incident written before #14 listed its cause alone
        IncidentComponent(incident.target, incident.service, incident.impact),
    )
    kept = tuple(c for c in listed if (c.target, c.service) not in private)
    if not kept:
        return None
    if len(kept) == len(listed):
        return incident
    cause, worst = kept[0], max(kept, key=lambda c: c.status.severity)
    return replace(
        incident, target=cause.target, service=cause.service, impact=worst.status, components=kept
    )


def public_component_keys(keys: tuple[str, ...], private: PrivateKeys) -> tuple[str, ...] | None:
    """Component keys (a window's, a message's) without the private ones; None when there were
    some and none is public (an empty tuple stays one: about no component in particular)."""
    if not private or not keys:
        return keys
    kept = tuple(k for k in keys if split_component_key(k) not in private)
    return kept or None


def public_window(window: Maintenance, private: PrivateKeys) -> Maintenance | None:
    """``window`` with its public components alone; None when it named components and none of
    them is public."""
    kept = public_component_keys(window.components, private)
    if kept is None:
        return None
    return window if len(kept) == len(window.components) else replace(window, components=kept)


class SubscriberKind(enum.StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


@dataclass(frozen=True, slots=True)
class Subscriber:
    id: int
    kind: SubscriberKind
    address: str
    """The e-mail address, or the webhook's URL."""
    components: tuple[str, ...]
    """Component keys it follows; empty: every component."""
    language: str
    """``en`` or ``ru``: what its messages are written in."""
    created_at: float
    confirmed_at: float | None = None
    """None: not confirmed yet (double opt-in), and sent nothing but the confirmation."""
    unsubscribed_at: float | None = None

    @property
    def active(self) -> bool:
        return self.confirmed_at is not None and self.unsubscribed_at is None

    def follows(self, keys: tuple[str, ...]) -> bool:
        """Whether a message about components ``keys`` is for it (:func:`follows`)."""
        return follows(self.components, keys)


class SubscribeOutcome(enum.StrEnum):
    """What a subscription request did; the page answers the same to all but ``FULL`` and
    ``LIMITED``, so it never tells who is subscribed."""

    PENDING = "pending"
    """A confirmation is queued (new, or re-requested by an unconfirmed or lapsed address)."""
    ALREADY = "already"
    """Confirmed before: its components were updated, nothing is sent."""
    LIMITED = "limited"
    """This address was sent a confirmation too recently: nothing more is sent for now."""
    FULL = "full"
    """Too many unconfirmed subscriptions are waiting: refused for now."""


@dataclass(frozen=True, slots=True)
class PublicMessage:
    """Something subscribers are told, queued in the transaction that made it public."""

    id: int
    incident_id: int | None
    maintenance_id: int | None
    event: str
    """Incidents: ``opened``, ``update``, ``resolved``, ``postmortem``; windows: ``scheduled``,
    ``started``, ``completed``, ``cancelled``."""
    phase: str | None
    """An incident's Statuspage status after this message (:data:`PHASES`)."""
    text: str
    """What a person wrote (shown as written); empty for the machine's own events."""
    components: tuple[str, ...]
    """The component keys it concerns (who is told: :meth:`Subscriber.follows`)."""
    at: float
    fanned_out_at: float | None = None


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    """Given up on after its retries (or refused for good, as a webhook to a private address)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message (or a confirmation request, ``message_id`` None) owed to one subscriber."""

    id: int
    subscriber_id: int
    message_id: int | None
    state: DeliveryState
    attempts: int
    next_at: float
    created_at: float
    done_at: float | None = None
    error: str | None = None
    """A sanitised error class ("timeout", "refused"); never an address or a server's text."""
