"""The JSON documents, in Atlassian Statuspage's shape (``/api/v2/*.json``).

Field names and value sets are Statuspage's, so its existing clients read ours
(``tests/statuspage/test_statuspage_fixture.py`` compares every endpoint with its documented
examples). Where our data has no counterpart the field is there with Statuspage's empty value
(``description: null``, ``start_date: null``). Components without any check yet have no
Statuspage status and are left out until their first check (unless under maintenance);
``created_at`` and ``updated_at`` of a component are both the start of its current status (the
store keeps no creation time). One field is ours: in ``summary.json`` and ``components.json``
each component carries ``uptime`` (:func:`uptime_document`, the figure the HTML and the TUI
show); Statuspage's clients ignore it.

**During maintenance** a covered component's ``status`` is ``under_maintenance``; the page's
``status.indicator`` stays within Statuspage's documented ``none``/``minor``/``major``/
``critical``, from the components not under maintenance (planned work is not an outage), and
the windows are in ``scheduled_maintenances``. Maintenance objects: :func:`maintenance_document`
(cancelled windows: :mod:`statuspage.maintenance`).
"""

from __future__ import annotations

import json
from typing import Any

from monitor.figures import PAGE_WINDOW, Uptime
from statuspage.maintenance import MaintenanceUpdate, MaintenanceView
from statuspage.model import Board, ComponentView, GroupView, IncidentView, UpdateView
from statuspage.text import iso
from statuspage.vocabulary import EMPTY_STORE

UNDER_MAINTENANCE = "Under maintenance"
"""``status.description`` when every published component is under maintenance."""

Document = dict[str, Any]


def encode(document: Document) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def page(board: Board) -> Document:
    return {
        "id": board.page.id,
        "name": board.page.name,
        "url": board.page.url,
        "time_zone": "Etc/UTC",
        "updated_at": iso(board.updated_at),
    }


def status(board: Board) -> Document:
    condition = board.condition
    if board.empty:
        description = EMPTY_STORE
    elif not condition.known:  # everything published is under maintenance
        description = UNDER_MAINTENANCE
    else:
        description = condition.banner
    return {"indicator": condition.indicator.value, "description": description}


def _component(board: Board, component: ComponentView, *, uptime: bool = False) -> Document:
    """``uptime``: with ours (the page's list of components, when the board has the figures;
    never inside an incident, which is the same document in every listing)."""
    since = component.since if component.since is not None else board.updated_at
    extra = {"uptime": uptime_document(board, component)} if uptime else {}
    return {
        "id": component.id,
        "name": component.name,
        "status": component.api.value,
        "created_at": iso(since),
        "updated_at": iso(since),
        "position": component.position,
        "description": None,
        "showcase": True,
        "start_date": None,
        "group_id": component.group_id,
        "page_id": board.page.id,
        "group": False,
        "only_show_if_degraded": False,
        **extra,
    }


def uptime_document(board: Board, component: ComponentView) -> Document:
    """Ours, beside Statuspage's fields: the component's uptime over the page's window, the
    figure the HTML and the TUI show (:mod:`monitor.figures`): ``percent`` rounded down to two
    decimals (null: no data) and ``text`` as printed."""
    figure = (board.uptimes or {}).get(component.id, Uptime())
    return {"window": PAGE_WINDOW.key, "percent": figure.value, "text": figure.text}


def _group(board: Board, group: GroupView, position: int, members: list[Document]) -> Document:
    since = group.since if group.since is not None else board.updated_at
    return {
        "id": group.id,
        "name": group.name,
        "status": group.api.value,
        "created_at": iso(since),
        "updated_at": iso(since),
        "position": position,
        "description": None,
        "showcase": False,
        "start_date": None,
        "group_id": None,
        "page_id": board.page.id,
        "group": True,
        "only_show_if_degraded": False,
        "components": [m["id"] for m in members],
    }


def component_list(board: Board) -> list[Document]:
    """Groups (``group: true``) each followed by their members; unchecked components left out."""
    documents: list[Document] = []
    top = 0
    for group in board.groups:
        members = [
            _component(board, c, uptime=board.uptimes is not None)
            for c in group.components
            if c.published
        ]
        if not members:
            continue
        if group.id is None:
            for member in members:
                top += 1
                documents.append({**member, "position": top})
            continue
        top += 1
        documents.append(_group(board, group, top, members))
        documents.extend(members)
    return documents


def _update(board: Board, incident: IncidentView, update: UpdateView) -> Document:
    affected = [
        {
            "code": a.component_id,
            "name": a.name,
            "old_status": a.old.api.value,
            "new_status": a.new.api.value,
        }
        for a in update.affected
        if a.old.known and a.new.known
    ]
    return {
        "id": update.id,
        "status": update.status.value,
        "body": update.body,
        "incident_id": str(incident.id),
        "created_at": iso(update.at),
        "updated_at": iso(update.at),
        "display_at": iso(update.at),
        "affected_components": affected or None,
    }


def incident_document(board: Board, incident: IncidentView) -> Document:
    """Statuspage's incident object: ``impact`` is the incident's (its worst component's, by
    :mod:`monitor.impact`'s rule), ``components`` every component it affects, the cause first,
    as Statuspage lists them (the component object with its current status; one never checked
    is left out, as everywhere)."""
    return {
        "id": str(incident.id),
        "name": incident.name,
        "status": incident.status.value,
        "created_at": iso(incident.opened_at),
        "updated_at": iso(incident.updated_at),
        "monitoring_at": iso(incident.monitoring_at) if incident.monitoring_at else None,
        "resolved_at": iso(incident.resolved_at) if incident.resolved_at else None,
        "impact": incident.impact.value,
        "shortlink": f"{board.page.url}/incidents/{incident.id}",
        "started_at": iso(incident.opened_at),
        "page_id": board.page.id,
        "incident_updates": [_update(board, incident, u) for u in incident.updates],
        "components": [
            _component(board, c.view)
            for c in incident.components
            if c.view is not None and c.view.published
        ],
    }


def _maintenance_update(window: MaintenanceView, update: MaintenanceUpdate) -> Document:
    return {
        "id": update.id,
        "status": update.status.value,
        "body": update.body,
        "incident_id": window.id,
        "created_at": iso(update.at),
        "updated_at": iso(update.at),
        "display_at": iso(update.at),
        "affected_components": None,
    }


def maintenance_document(board: Board, window: MaintenanceView) -> Document:
    """Statuspage's scheduled-maintenance object: an incident's fields with ``impact``
    ``maintenance``, ``scheduled_for``/``scheduled_until``, and ``started_at`` its creation
    (Statuspage's meaning: when it was posted)."""
    return {
        "id": window.id,
        "name": window.name,
        "status": window.status.value,
        "created_at": iso(window.created_at),
        "updated_at": iso(window.updated_at),
        "monitoring_at": None,
        "resolved_at": iso(window.resolved_at) if window.resolved_at is not None else None,
        "impact": "maintenance",
        "shortlink": f"{board.page.url}/#{window.anchor}",
        "started_at": iso(window.created_at),
        "page_id": board.page.id,
        "incident_updates": [_maintenance_update(window, u) for u in window.updates],
        "components": [_component(board, c) for c in window.components if c.published],
        "scheduled_for": iso(window.scheduled_for),
        "scheduled_until": iso(window.scheduled_until),
    }


def _maintenances(board: Board, windows: tuple[MaintenanceView, ...]) -> list[Document]:
    return [maintenance_document(board, w) for w in windows]


def summary_json(board: Board) -> Document:
    return {
        "page": page(board),
        "status": status(board),
        "components": component_list(board),
        "incidents": [incident_document(board, i) for i in board.open_incidents],
        "scheduled_maintenances": _maintenances(
            board, (*board.active_maintenances, *board.upcoming_maintenances)
        ),
    }


def status_json(board: Board) -> Document:
    return {"page": page(board), "status": status(board)}


def components_json(board: Board) -> Document:
    return {"page": page(board), "components": component_list(board)}


def incidents_json(board: Board) -> Document:
    """The most recent incidents (at most 50), open ones first."""
    incidents = [incident_document(board, i) for i in board.incidents]
    return {"page": page(board), "incidents": incidents}


def unresolved_json(board: Board) -> Document:
    """Incidents not yet resolved (Statuspage: investigating, identified or monitoring)."""
    return {
        "page": page(board),
        "incidents": [incident_document(board, i) for i in board.open_incidents],
    }


def maintenances_json(board: Board) -> Document:
    """The 50 most recent windows, newest start first: upcoming, active, completed (and
    cancelled, as completed)."""
    windows = tuple(sorted(board.maintenances, key=lambda w: -w.scheduled_for))
    return {"page": page(board), "scheduled_maintenances": _maintenances(board, windows)}


def upcoming_json(board: Board) -> Document:
    """Windows still ``scheduled``, soonest first."""
    windows = board.upcoming_maintenances
    return {"page": page(board), "scheduled_maintenances": _maintenances(board, windows)}


def active_json(board: Board) -> Document:
    """Windows ``in_progress`` (Statuspage's ``verifying`` is never used)."""
    windows = board.active_maintenances
    return {"page": page(board), "scheduled_maintenances": _maintenances(board, windows)}
