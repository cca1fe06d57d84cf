"""What of the store is public (#16): a ``[[checks]]`` entry is on the page only when its config
says ``public = true``; targets and their services always are.

The one place the page leaves private components out (:meth:`statuspage.source.StoreSource`
applies it to what it reads): every output — the HTML, each ``/api/v2`` document, the Atom feed,
the badges, the subscription form — is made from the board, so none of them can name a private
component. An incident is shown with its public components alone, and not at all when none of
them is public (its page is a 404, as an unknown number's); a maintenance window likewise.

A component the catalogue no longer names (a target taken out of the config) is not private: its
incidents stay shown, as before #16. A private check's incidents exist only for a check made
private after it had some (the daemon opens incidents only for public checks, and people may
name only public components), so the catalogue's flag is what hides them.

An automatic incident whose cause became private but which lists public components too (a
person replaced its components) is told with the first public one as its cause.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from monitor.store.models import Component, Incident, IncidentComponent, split_component_key
from monitor.store.public_models import Maintenance

Key = tuple[str, str]
"""(target, service) of a component."""


def private_keys(catalogue: Iterable[Component]) -> frozenset[Key]:
    """The components the page must not show."""
    return frozenset((c.target, c.service) for c in catalogue if not c.public)


def public_incident(incident: Incident, private: frozenset[Key]) -> Incident | None:
    """``incident`` with its public components alone (the first its cause, its impact the worst
    of theirs); None when none of them is public."""
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


def public_window(window: Maintenance, private: frozenset[Key]) -> Maintenance | None:
    """``window`` with its public components alone; None when it named components and none of
    them is public."""
    if not private or not window.components:
        return window
    kept = tuple(k for k in window.components if split_component_key(k) not in private)
    if not kept:
        return None
    return window if len(kept) == len(window.components) else replace(window, components=kept)
