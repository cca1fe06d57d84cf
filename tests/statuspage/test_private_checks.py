"""Private ``[[checks]]`` on the status page (#16): a store with a public check and a private one,
incidents and maintenance windows of each, served by the real app. The private check is in no
output — the HTML (both languages), every ``/api/v2`` document, the Atom feed, the badges —
nor does its outage count in the page's status; an incident is shown with its public components
alone, and one about private components alone is shown nowhere (its page is the 404 of an
unknown number); a maintenance window likewise; the subscription form offers public components
alone."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from monitor.store import Component, IncidentComponent, Status
from monitor.store.writer import HistoryWriter
from tests.statuspage.conftest import Client, Store
from tests.statuspage.scenarios import API, DAY, HOUR, NOW, check
from tests.statuspage.test_subscribe import SECRET, SECRET_ENV, settings

FRONT = "front-door"
PRIVATE = "ledger-primary"
PRIVATE_NAME = "Ledger primary database"
"""What must not appear anywhere: the private check's key and its display name."""
CATALOGUE = (
    Component(API, "", "QuestCity API", "QuestCity", 0),
    Component(FRONT, "", "Website", "Edge", 10_000, kind="http", public=True),
    Component(PRIVATE, "", PRIVATE_NAME, "Edge", 10_001, kind="postgres", public=False),
)
MAJOR = Status.UNREACHABLE
MINOR = Status.DEGRADED

DOCUMENTS = (
    "summary.json",
    "status.json",
    "components.json",
    "incidents.json",
    "incidents/unresolved.json",
    "scheduled-maintenances.json",
    "scheduled-maintenances/upcoming.json",
    "scheduled-maintenances/active.json",
)


@dataclass(frozen=True)
class Ids:
    front: int
    """The public check's automatic incident (resolved)."""
    private: int
    """The private check's automatic incident (open: it was public when it opened)."""
    mixed: int
    """A written incident naming both (open)."""
    private_written: int
    """A written incident naming the private check alone (resolved)."""
    private_window: int
    """An active window on the private check alone."""
    mixed_window: int
    """An upcoming window on both."""


async def scenario(writer: HistoryWriter) -> Ids:
    await writer.sync_components(CATALOGUE)
    for at in (NOW - 2 * DAY, NOW - HOUR, NOW - 30):
        await check(writer, API, at, Status.HEALTHY, 40.0)
        await check(writer, FRONT, at, Status.HEALTHY, 20.0)
    await check(writer, PRIVATE, NOW - 2 * DAY, Status.HEALTHY, 3.0)
    await check(writer, PRIVATE, NOW - 30, Status.UNREACHABLE, None, error="connection refused")
    front = await writer.open_incident(FRONT, "", Status.UNHEALTHY, NOW - DAY, "front down")
    await writer.resolve_incident(front, NOW - DAY + 600, "front back")
    private = await writer.open_incident(PRIVATE, "", MAJOR, NOW - 600, "ledger down")
    mixed = await writer.open_written_incident(
        "Payments and the website",
        [IncidentComponent(PRIVATE, "", MAJOR), IncidentComponent(FRONT, "", MINOR)],
        "We are looking into it.",
        "ops",
        NOW - 300,
    )
    private_written = await writer.open_written_incident(
        "Ledger failover", [IncidentComponent(PRIVATE, "", MAJOR)], "Failing over.", "ops",
        NOW - 2 * DAY,
    )  # fmt: skip
    await writer.update_incident(private_written, "resolved", "Done.", "ops", NOW - 2 * DAY + 60)
    private_window = await writer.schedule_maintenance(
        "Ledger upgrade", [PRIVATE], NOW - HOUR, NOW + HOUR, "Upgrading.", "ops", NOW - DAY
    )
    mixed_window = await writer.schedule_maintenance(
        "Edge move", [PRIVATE, FRONT], NOW + DAY, NOW + DAY + HOUR, None, "ops", NOW - DAY
    )
    return Ids(front, private, mixed, private_written, private_window, mixed_window)


async def get_all(http: httpx.AsyncClient, paths: list[str]) -> dict[str, httpx.Response]:
    return {path: await http.get(path) for path in paths}


async def test_a_private_check_is_in_no_output(store: Store, client: Client) -> None:
    ids = await scenario(store.writer)
    paths = [
        "/",
        "/?lang=ru",
        "/history.atom",
        "/history.atom?lang=ru",
        *(f"/api/v2/{name}" for name in DOCUMENTS),
        *(f"/incidents/{n}" for n in (ids.front, ids.mixed)),
        f"/badge/{FRONT}.svg",
    ]
    async with client() as http:
        answers = await get_all(http, paths)

    assert {path: a.status_code for path, a in answers.items()} == dict.fromkeys(paths, 200)
    for path, answer in answers.items():
        for secret in (PRIVATE, PRIVATE_NAME, "Ledger", "ledger"):
            assert secret not in answer.text, (path, secret)


async def test_the_json_tells_of_public_components_and_their_incidents_alone(
    store: Store, client: Client
) -> None:
    ids = await scenario(store.writer)
    async with client() as http:
        summary = (await http.get("/api/v2/summary.json")).json()
        incidents = (await http.get("/api/v2/incidents.json")).json()["incidents"]
        windows = (await http.get("/api/v2/scheduled-maintenances.json")).json()
        active = (await http.get("/api/v2/scheduled-maintenances/active.json")).json()

    listed = {c["name"]: c for c in summary["components"]}
    assert list(listed) == ["QuestCity", "QuestCity API", "Edge", "Website"]  # groups, members
    assert listed["Edge"]["components"] == [listed["Website"]["id"]]
    # The private check is unreachable and declared a major outage by the mixed incident: the
    # page's status is the website's declared partial outage, nothing worse.
    assert summary["status"]["indicator"] == "minor"
    assert {name: c["status"] for name, c in listed.items()} == {
        "QuestCity": "operational",
        "QuestCity API": "operational",
        "Edge": "degraded_performance",
        "Website": "degraded_performance",
    }
    assert [i["id"] for i in incidents] == [str(ids.mixed), str(ids.front)]
    assert [i["id"] for i in summary["incidents"]] == [str(ids.mixed)]
    mixed = incidents[0]
    assert [(c["name"], c["status"]) for c in mixed["components"]] == [
        ("Website", "degraded_performance")
    ]
    assert mixed["impact"] == "minor"
    assert mixed["name"] == "Payments and the website"  # a person's title is as written
    assert [m["id"] for m in windows["scheduled_maintenances"]] == [
        summary["scheduled_maintenances"][0]["id"]
    ]
    (window,) = windows["scheduled_maintenances"]
    assert window["name"] == "Edge move"
    assert [c["name"] for c in window["components"]] == ["Website"]
    assert active["scheduled_maintenances"] == []  # the active window is the private check's


async def test_an_incident_about_private_components_alone_is_not_found(
    store: Store, client: Client
) -> None:
    ids = await scenario(store.writer)
    async with client() as http:
        unknown = await http.get("/incidents/999999")
        hidden = [await http.get(f"/incidents/{n}") for n in (ids.private, ids.private_written)]
        mixed = await http.get(f"/incidents/{ids.mixed}")

    assert unknown.status_code == 404
    for answer in hidden:
        assert (answer.status_code, answer.text) == (404, unknown.text)
    assert mixed.status_code == 200
    assert "Website" in mixed.text and "We are looking into it." in mixed.text


async def test_a_private_checks_badge_is_the_unknown_one(store: Store, client: Client) -> None:
    await scenario(store.writer)
    async with client() as http:
        unknown = await http.get("/badge/no-such-thing.svg")
        private = await http.get(f"/badge/{PRIVATE}.svg")
        by_name = await http.get("/badge/ledger-primary-database.svg")  # its name's slug
        public = await http.get(f"/badge/{FRONT}.svg")

    assert unknown.status_code == 404
    assert (private.status_code, private.content) == (404, unknown.content)
    assert (by_name.status_code, by_name.content) == (404, unknown.content)
    assert public.status_code == 200 and "Website" in public.text


async def test_a_check_made_public_again_is_shown_with_its_incidents(
    store: Store, client: Client
) -> None:
    """Nothing is lost while a check is private: the catalogue's flag alone hides it."""
    ids = await scenario(store.writer)
    await store.writer.sync_components(
        [*CATALOGUE[:2], Component(PRIVATE, "", PRIVATE_NAME, "Edge", 10_001, kind="postgres")]
    )
    async with client() as http:
        incidents = (await http.get("/api/v2/incidents.json")).json()["incidents"]
        badge = await http.get(f"/badge/{PRIVATE}.svg")
        by_name = await http.get("/badge/ledger-primary-database.svg")
        page = await http.get(f"/incidents/{ids.private}")

    assert {i["id"] for i in incidents} == {
        str(n) for n in (ids.front, ids.private, ids.mixed, ids.private_written)
    }
    assert badge.status_code == by_name.status_code == 200 and PRIVATE_NAME in badge.text
    assert page.status_code == 200 and PRIVATE_NAME in page.text


async def test_the_subscription_form_offers_public_components_alone(
    store: Store, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    await scenario(store.writer)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    async with client(settings=settings()) as http:
        form = await http.get("/subscribe")

    assert form.status_code == 200
    assert f'value="{FRONT}"' in form.text and "Website" in form.text
    assert PRIVATE not in form.text and PRIVATE_NAME not in form.text
