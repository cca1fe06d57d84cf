"""Every Statuspage endpoint we serve, field by field against Statuspage's documented example
responses (``fixtures/statuspage_api_v2.json``, its sources recorded in it).

For each kind of object (page, status, component, incident, incident update, scheduled
maintenance) the documentation's examples give the keys and, per key, the JSON types; ours must
have exactly those keys (plus the few listed in :data:`OURS`, each with why), the same types
(null where theirs is null; a type their examples only show null for is in :data:`NULL_IN_DOCS`),
enum values within Statuspage's documented sets, and timestamps where theirs are timestamps, in
their form. The store behind it holds a written incident with updates, a resolved one with a
postmortem, a taken-over and an automatic incident, and upcoming, active, cancelled and
completed maintenance windows (:mod:`tests.statuspage.public_scenario`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.statuspage import public_scenario as scenario
from tests.statuspage.conftest import Client, Store

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "statuspage_api_v2.json").read_text())
DOCUMENTED: dict[str, dict[str, Any]] = FIXTURE["responses"]
VALUE_SETS: dict[str, list[str]] = FIXTURE["value_sets"]
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?(Z|[+-]\d\d:\d\d)")

OURS: dict[str, set[str]] = {
    # Statuspage's live responses carry these; the documentation's examples predate them.
    "page": {"time_zone"},
    "incident": {"started_at", "components"},
    "maintenance": {"started_at", "components"},
    "update": {"affected_components"},
    # Ours alone (#14): the 90-day uptime the page shows, in summary.json and components.json.
    "component": {"uptime"},
    # A group lists its members' ids, as Statuspage's group components do.
    "group": {"components"},
}
NULL_IN_DOCS = {
    # (kind, key): the type ours may have where the documented examples only show null
    ("component", "group_id"): str,  # a member of a group: the group's id
    ("incident", "monitoring_at"): str,
    ("maintenance", "resolved_at"): str,  # a completed window
    ("update", "affected_components"): list,
}
ENUMS = {
    ("component", "status"): "component.status",
    ("status", "indicator"): "status.indicator",
    ("incident", "status"): "incident.status",
    ("incident", "impact"): "incident.impact",
    ("maintenance", "status"): "maintenance.status",
    ("maintenance", "impact"): "maintenance.impact",
    ("update", "status"): "update.status",
}
CHILDREN = {"incident_updates": "update", "components": "component"}


def objects(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object of a response with its kind."""
    for key, kind in (("page", "page"), ("status", "status")):
        if key in document:
            yield kind, document[key]
    for key, kind in (
        ("components", "component"),
        ("incidents", "incident"),
        ("scheduled_maintenances", "maintenance"),
    ):
        for item in document.get(key, []):
            yield from _with_children(kind, item)


def _with_children(kind: str, item: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield kind, item
    if kind in ("incident", "maintenance"):
        for key, child in CHILDREN.items():
            for nested in item.get(key, []):
                yield child, nested


def json_type(value: Any) -> type:
    return type(None) if value is None else type(value)


def documented_shapes() -> dict[str, dict[str, set[type]]]:
    """Per kind, per key, the JSON types the documentation's examples show (all endpoints)."""
    shapes: dict[str, dict[str, set[type]]] = {}
    for document in DOCUMENTED.values():
        for kind, item in objects(document):
            shape = shapes.setdefault(kind, {})
            for key, value in item.items():
                shape.setdefault(key, set()).add(json_type(value))
    return shapes


SHAPES = documented_shapes()
TIMESTAMP_KEYS = {
    (kind, key)
    for document in DOCUMENTED.values()
    for kind, item in objects(document)
    for key, value in item.items()
    if isinstance(value, str) and TIMESTAMP.fullmatch(value)
} | {("incident", "started_at"), ("maintenance", "started_at")}


def check(kind: str, ours: dict[str, Any], where: str, *, complete: bool = True) -> None:
    """``complete``: every documented key present (the documentation's older summary.json
    example shows fewer component keys than its components.json: not ``complete``)."""
    shape = SHAPES[kind]
    allowed = set(shape) | OURS.get(kind, set())
    if kind == "component" and ours.get("group") is True:
        allowed |= OURS["group"]
    missing = set(shape) - set(ours) if complete else set()
    assert not missing, f"{where}: Statuspage's {sorted(missing)} missing"
    extra = set(ours) - allowed
    assert not extra, f"{where}: {sorted(extra)} are not Statuspage's nor listed as ours"
    for key, value in ours.items():
        if key not in shape:
            continue
        types = set(shape[key])
        if key in ("incident_updates", "components"):
            types = {list}
        if (kind, key) in NULL_IN_DOCS:
            types.add(NULL_IN_DOCS[(kind, key)])
        assert json_type(value) in types, f"{where}.{key}: {value!r} is not {types}"
        if (kind, key) in ENUMS:
            values = VALUE_SETS[ENUMS[(kind, key)]]
            assert value in values, f"{where}.{key}: {value!r} not in Statuspage's {values}"
        if (kind, key) in TIMESTAMP_KEYS and value is not None:
            assert TIMESTAMP.fullmatch(value), f"{where}.{key}: {value!r} is not their form"
            datetime.fromisoformat(value)


def test_the_fixture_is_statuspage_s_own() -> None:
    """The documented examples pass the same rules (the comparison's own sanity)."""
    for name, document in DOCUMENTED.items():
        for kind, item in objects(document):
            check(kind, item, f"documented {name} {kind}", complete=False)
    assert SHAPES["component"].keys() >= {"start_date", "showcase", "only_show_if_degraded"}


@pytest.mark.parametrize("endpoint", list(DOCUMENTED))
async def test_endpoint_matches_statuspage(endpoint: str, store: Store, client: Client) -> None:
    await scenario.public(store.writer)
    async with client() as http:
        response = await http.get(f"/api/v2/{endpoint}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    ours, theirs = response.json(), DOCUMENTED[endpoint]
    assert set(ours) == set(theirs)
    for key, value in theirs.items():  # where theirs shows objects, ours has some to compare
        if isinstance(value, list) and value:
            assert ours[key], f"{endpoint}: no {key} to compare"
    seen = set()
    for kind, item in objects(ours):
        check(kind, item, f"{endpoint} {kind} {item.get('id', '')}")
        seen.add(kind)
    assert seen >= {kind for kind, _ in objects(theirs)}
