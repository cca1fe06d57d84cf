"""The JSON documents, in Atlassian Statuspage's shape (``/api/v2/*.json``).

Field names and value sets are Statuspage's, so its existing clients read ours. Where our data has
no counterpart the field is there with Statuspage's empty value (``description: null``,
``scheduled_maintenances: []``). Components without any check yet have no Statuspage status and
are left out until their first check; ``created_at`` and ``updated_at`` of a component are both
the start of its current status (the store keeps no creation time). One field is ours: in
``summary.json`` and ``components.json`` each component carries ``uptime`` (:func:`uptime_document`,
the figure the HTML and the TUI show); Statuspage's clients ignore it.
"""

from __future__ import annotations

import json
from typing import Any

from monitor.figures import PAGE_WINDOW, Uptime
from statuspage.model import Board, ComponentView, GroupView, IncidentView, UpdateView
from statuspage.text import iso
from statuspage.vocabulary import EMPTY_STORE

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
    description = EMPTY_STORE if board.empty else condition.banner
    return {"indicator": condition.indicator.value, "description": description}


def _component(board: Board, component: ComponentView, *, uptime: bool = False) -> Document:
    """``uptime``: with ours (the page's list of components, when the board has the figures;
    never inside an incident, which is the same document in every listing)."""
    since = component.since if component.since is not None else board.updated_at
    extra = {"uptime": uptime_document(board, component)} if uptime else {}
    return {
        "id": component.id,
        "name": component.name,
        "status": component.condition.api.value,
        "created_at": iso(since),
        "updated_at": iso(since),
        "position": component.position,
        "description": None,
        "showcase": True,
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
        "status": group.condition.api.value,
        "created_at": iso(since),
        "updated_at": iso(since),
        "position": position,
        "description": None,
        "showcase": False,
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
            if c.condition.known
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
            if c.view is not None and c.view.condition.known
        ],
    }


def summary_json(board: Board) -> Document:
    return {
        "page": page(board),
        "status": status(board),
        "components": component_list(board),
        "incidents": [incident_document(board, i) for i in board.open_incidents],
        "scheduled_maintenances": [],
    }


def status_json(board: Board) -> Document:
    return {"page": page(board), "status": status(board)}


def components_json(board: Board) -> Document:
    return {"page": page(board), "components": component_list(board)}


def incidents_json(board: Board) -> Document:
    """The most recent incidents (at most 50), open ones first."""
    incidents = [incident_document(board, i) for i in board.incidents]
    return {"page": page(board), "incidents": incidents}
