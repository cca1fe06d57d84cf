"""monitor.public_actions: every refusal says what is wrong and what to do, and writes nothing;
the happy paths hand the store's ports cleaned values (a fake store records what it was asked;
the CLI's tests run the same actions against a real one)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from typing import Any, TypeVar, cast

import pytest

from monitor.public_actions import (
    MAX_COMPONENTS,
    MAX_MESSAGE,
    OPENED_MESSAGE,
    PHASE_MESSAGES,
    PublicActionError,
    cancel_maintenance,
    check_components,
    clean_message,
    clean_title,
    incident_line,
    maintenance_line,
    open_incident,
    parse_moment,
    schedule_maintenance,
    update_incident,
    write_postmortem,
)
from monitor.store import (
    Component,
    HistoryRead,
    HistoryWrite,
    Incident,
    IncidentComponent,
    IncidentOrigin,
    IncidentState,
    Maintenance,
    Status,
)

T = TypeVar("T")
NOW = 1_796_695_200.0  # 2026-12-08T02:00Z
HOUR = 3600.0
DAY = 86400.0
CATALOGUE = [
    Component("questcity-api", "", "QuestCity API", "Core", 0),
    Component("questcity-api", "database", "Database", "Core", 1, critical=True),
    Component("questcity-api", "s3", "Photos and avatars", "Core", 2),
]


def run(step: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(step)


def incident(**changes: Any) -> Incident:
    base = Incident(
        id=7,
        target="questcity-api",
        service="s3",
        state=IncidentState.OPEN,
        impact=Status.UNHEALTHY,
        title="Photos fail to upload",
        opened_at=NOW - 65 * 60,
        resolved_at=None,
        updated_at=NOW,
        components=(IncidentComponent("questcity-api", "s3", Status.UNHEALTHY),),
        origin=IncidentOrigin.WRITTEN,
        phase="investigating",
        written_by="alice",
    )
    return replace(base, **changes)


def window(**changes: Any) -> Maintenance:
    base = Maintenance(
        id=3,
        title="Database upgrade",
        message=None,
        components=("questcity-api/database",),
        starts_at=NOW + HOUR,
        ends_at=NOW + 3 * HOUR,
        created_by="alice",
        created_at=NOW - DAY,
    )
    return replace(base, **changes)


class Store:
    """The reads and writes the actions use, recording every write."""

    def __init__(self) -> None:
        self.catalogue = list(CATALOGUE)
        self.incidents: dict[int, Incident] = {7: incident()}
        self.windows: dict[int, Maintenance] = {3: window()}
        self.writes: list[tuple[Any, ...]] = []

    @property
    def r(self) -> HistoryRead:
        return cast(HistoryRead, self)

    @property
    def w(self) -> HistoryWrite:
        return cast(HistoryWrite, self)

    async def components(self) -> list[Component]:
        return self.catalogue

    async def incident(self, incident_id: int) -> Incident | None:
        return self.incidents.get(incident_id)

    async def maintenance(self, maintenance_id: int) -> Maintenance | None:
        return self.windows.get(maintenance_id)

    async def open_written_incident(
        self,
        title: str,
        components: Sequence[IncidentComponent],
        message: str,
        by: str,
        at: float,
    ) -> int:
        self.writes.append(("open", title, tuple(components), message, by, at))
        return 42

    async def update_incident(
        self,
        incident_id: int,
        phase: str,
        message: str,
        by: str,
        at: float,
        components: Sequence[IncidentComponent] | None = None,
    ) -> Incident | None:
        self.writes.append(("update", incident_id, phase, message, by, at))
        found = self.incidents.get(incident_id)
        return None if found is None else replace(found, phase=phase)

    async def write_postmortem(
        self, incident_id: int, text: str, by: str, at: float
    ) -> Incident | None:
        self.writes.append(("postmortem", incident_id, text, by, at))
        found = self.incidents.get(incident_id)
        return None if found is None else replace(found, postmortem=text, postmortem_at=at)

    async def schedule_maintenance(
        self,
        title: str,
        components: Sequence[str],
        starts_at: float,
        ends_at: float,
        message: str | None,
        by: str,
        at: float,
    ) -> int:
        self.writes.append(("schedule", title, tuple(components), starts_at, ends_at, message, by))
        return 9

    async def cancel_maintenance(
        self, maintenance_id: int, by: str, at: float
    ) -> Maintenance | None:
        self.writes.append(("cancel", maintenance_id, by, at))
        found = self.windows.get(maintenance_id)
        return None if found is None else replace(found, cancelled_at=at, cancelled_by=by)


@pytest.fixture
def store() -> Store:
    return Store()


def refused(step: Coroutine[Any, Any, object], store: Store) -> str:
    with pytest.raises(PublicActionError) as caught:
        run(step)
    assert store.writes == [], "a refusal writes nothing"
    return str(caught.value)


# -- moments ------------------------------------------------------------------------------------


def test_a_moment_carries_its_offset() -> None:
    assert parse_moment("2026-12-08T05:00+03:00") == NOW
    assert parse_moment(" 2026-12-08T02:00Z ") == NOW
    assert parse_moment("2026-12-08T02:00:00+00:00") == NOW


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2026-12-08T02:00", "Say +03:00 or Z"),
        ("tomorrow 2am", "is not an ISO 8601 moment"),
        ("2026-12-08T02:00Z" + "0" * 80, "ISO 8601 with its offset"),
        ("2026-12-08T02:00\x1b[2JZ", "ISO 8601 with its offset"),
        ("", "ISO 8601 with its offset"),
    ],
)
def test_a_moment_without_an_offset_or_not_one_is_refused(text: str, says: str) -> None:
    with pytest.raises(PublicActionError, match=r"\+03:00") as caught:
        parse_moment(text)
    assert says in str(caught.value)


# -- what people type -------------------------------------------------------------------------


def test_a_title_is_one_printable_line() -> None:
    assert clean_title("  Photos   fail\tto upload ") == "Photos fail to upload"
    for bad, says in (
        ("", "give it a title"),
        ("   ", "give it a title"),
        ("Down\x1b[31m", "no control codes"),
        ("Down\u202e", "no control codes"),
        ("x" * 201, "keep it to 200 and put the rest in --message"),
    ):
        with pytest.raises(PublicActionError, match=says):
            clean_title(bad)
    assert clean_title("x" * 200) == "x" * 200


def test_a_message_keeps_its_lines_and_loses_control_characters() -> None:
    text = "Uploads fail.\r\n\r\nWe are\x1b[2J on it\u202e.\tSoon\x00.  \n"
    assert clean_message(text) == "Uploads fail.\n\nWe are[2J on it. Soon."
    assert clean_message(None) == ""
    assert clean_message(" \n\x07 ") == ""
    assert clean_message("y" * MAX_MESSAGE) == "y" * MAX_MESSAGE
    with pytest.raises(PublicActionError, match="5001 characters: keep it to 5000"):
        clean_message("y" * (MAX_MESSAGE + 1))
    with pytest.raises(PublicActionError, match="over 5000 characters"):
        clean_message("y" * 10**7)


def test_components_are_known_keys_each_once() -> None:
    keys = ["questcity-api/s3", " questcity-api ", "questcity-api/s3", ""]
    assert check_components(keys, CATALOGUE) == ("questcity-api/s3", "questcity-api")


def test_an_unknown_component_lists_the_known_ones_and_the_closest() -> None:
    with pytest.raises(PublicActionError) as caught:
        check_components(["questcity-api/s4"], CATALOGUE)
    said = str(caught.value)
    assert "no component 'questcity-api/s4' in the store. Did you mean questcity-api/s3?" in said
    assert "Its components: questcity-api, questcity-api/database, questcity-api/s3" in said


def test_the_known_keys_listed_are_bounded() -> None:
    many = [Component(f"t{n}", "", f"T{n}", "G", n) for n in range(200)]
    with pytest.raises(PublicActionError) as caught:
        check_components(["nope\x1b"], many)
    said = str(caught.value)
    assert said.endswith("t29 …") and "t30" not in said
    assert "\x1b" not in said


def test_no_components_too_many_or_an_empty_catalogue_are_refused() -> None:
    with pytest.raises(PublicActionError, match=r"name the components it concerns \(--components"):
        check_components([" ", ""], CATALOGUE)
    many = [Component(f"t{n}", "", f"T{n}", "G", n) for n in range(60)]
    with pytest.raises(PublicActionError, match=f"at most {MAX_COMPONENTS} components"):
        check_components([f"t{n}" for n in range(51)], many)
    assert len(check_components([f"t{n}" for n in range(50)], many)) == 50
    with pytest.raises(PublicActionError, match="the monitor writes them when it starts"):
        check_components(["questcity-api"], [])


# -- incidents ----------------------------------------------------------------------------------


def test_open_writes_the_declared_impact_on_each_component(store: Store) -> None:
    new = run(
        open_incident(
            store.r,
            store.w,
            title="Photos fail to upload",
            components=["questcity-api/s3", "questcity-api/database"],
            impact="Major",
            by=" alice\x1b ",
            at=NOW,
        )
    )
    assert new == 42
    (write,) = store.writes
    assert write == (
        "open",
        "Photos fail to upload",
        (
            IncidentComponent("questcity-api", "s3", Status.UNHEALTHY),
            IncidentComponent("questcity-api", "database", Status.UNHEALTHY),
        ),
        OPENED_MESSAGE,
        "alice",
        NOW,
    )


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"impact": "huge"}, "'huge' is not an impact: say minor, major, critical"),
        ({"by": " \x00 "}, "say who you are (--by NAME)"),
        ({"title": ""}, "give it a title"),
        ({"components": ["nope"]}, "no component 'nope' in the store"),
        ({"message": "m" * 6000}, "keep it to 5000"),
    ],
)
def test_open_refusals(store: Store, changes: dict[str, Any], says: str) -> None:
    args: dict[str, Any] = {
        "title": "Down",
        "components": ["questcity-api"],
        "impact": "minor",
        "by": "alice",
        "at": NOW,
    }
    assert says in refused(open_incident(store.r, store.w, **{**args, **changes}), store)


def test_update_a_missing_incident_says_where_to_look(store: Store) -> None:
    said = refused(update_incident(store.r, store.w, 8, status="identified", by="a", at=NOW), store)
    assert said == "no incident 8; `questcity incident list` shows them"


def test_update_refusals(store: Store) -> None:
    said = refused(update_incident(store.r, store.w, 7, status="fixed", by="a", at=NOW), store)
    assert "'fixed' is not an incident status: say investigating, identified" in said
    store.incidents[7] = incident(state=IncidentState.RESOLVED, resolved_at=NOW)
    said = refused(update_incident(store.r, store.w, 7, status="resolved", by="a", at=NOW), store)
    assert "resolved already" in said and "questcity incident postmortem 7" in said


def test_update_without_a_message_uses_statuspages_words(store: Store) -> None:
    done = run(update_incident(store.r, store.w, 7, status="monitoring", by="bob", at=NOW))
    assert done.phase == "monitoring"
    assert store.writes == [("update", 7, "monitoring", PHASE_MESSAGES["monitoring"], "bob", NOW)]
    run(
        update_incident(store.r, store.w, 7, status="resolved", message=" Fixed.\n", by="b", at=NOW)
    )
    assert store.writes[-1] == ("update", 7, "resolved", "Fixed.", "b", NOW)


def test_a_postmortem_waits_for_the_incident_to_be_resolved(store: Store) -> None:
    said = refused(
        write_postmortem(store.r, store.w, 7, text="What happened", by="a", at=NOW), store
    )
    assert "still open: resolve it first" in said
    assert "questcity incident update 7 --status resolved" in said
    said = refused(write_postmortem(store.r, store.w, 9, text="x", by="a", at=NOW), store)
    assert said == "no incident 9; `questcity incident list` shows them"
    store.incidents[7] = incident(state=IncidentState.RESOLVED, resolved_at=NOW)
    said = refused(write_postmortem(store.r, store.w, 7, text=" \x1b ", by="a", at=NOW), store)
    assert "the postmortem is empty" in said
    done = run(write_postmortem(store.r, store.w, 7, text="# What\n\nA disk.", by="a", at=NOW))
    assert done.postmortem == "# What\n\nA disk."


# -- maintenance windows ------------------------------------------------------------------------


def schedule(store: Store, starts: float, ends: float, **changes: Any) -> int:
    args: dict[str, Any] = {
        "title": "Database upgrade",
        "components": ["questcity-api/database"],
        "starts_at": starts,
        "ends_at": ends,
        "by": "alice",
        "at": NOW,
    }
    return run(schedule_maintenance(store.r, store.w, **{**args, **changes}))


def test_schedule_a_window(store: Store) -> None:
    assert schedule(store, NOW + HOUR, NOW + 3 * HOUR, message="  \n") == 9
    assert store.writes == [
        (
            "schedule",
            "Database upgrade",
            ("questcity-api/database",),
            NOW + HOUR,
            NOW + 3 * HOUR,
            None,
            "alice",
        )
    ]
    # One running now (started in the past, ends ahead) and one exactly 7 days long are fine.
    schedule(store, NOW - HOUR, NOW + HOUR)
    schedule(store, NOW + 89 * DAY, NOW + 96 * DAY)


@pytest.mark.parametrize(
    ("starts", "ends", "says"),
    [
        (NOW + 2 * HOUR, NOW + HOUR, "--ends comes after --starts"),
        (NOW + HOUR, NOW + HOUR, "--ends comes after --starts"),
        (NOW - 3 * HOUR, NOW - HOUR, "ended already (2026-12-08T01:00Z)"),
        (NOW, NOW + 7 * DAY + 60, "at most 7 days (longer is not maintenance"),
        (NOW + 91 * DAY, NOW + 92 * DAY, "at most 90 days ahead"),
    ],
)
def test_window_refusals(store: Store, starts: float, ends: float, says: str) -> None:
    with pytest.raises(PublicActionError, match=re.escape(says)):
        schedule(store, starts, ends)
    assert store.writes == []


def test_cancel(store: Store) -> None:
    done = run(cancel_maintenance(store.r, store.w, 3, by="bob", at=NOW))
    assert (done.cancelled_by, store.writes) == ("bob", [("cancel", 3, "bob", NOW)])
    # Cancelled already: returned as it is, nothing more written.
    store.windows[3] = done
    assert run(cancel_maintenance(store.r, store.w, 3, by="carol", at=NOW)).cancelled_by == "bob"
    assert len(store.writes) == 1


def test_cancel_refusals(store: Store) -> None:
    said = refused(cancel_maintenance(store.r, store.w, 4, by="a", at=NOW), store)
    assert said == "no maintenance window 4; `questcity maintenance list` shows them"
    store.windows[3] = window(starts_at=NOW - 3 * HOUR, ends_at=NOW - HOUR)
    said = refused(cancel_maintenance(store.r, store.w, 3, by="a", at=NOW), store)
    assert "ended at 2026-12-08T01:00Z: there is nothing left to cancel" in said
    store.windows[3] = window(completed_at=NOW - 60)
    assert "nothing left to cancel" in refused(
        cancel_maintenance(store.r, store.w, 3, by="a", at=NOW), store
    )


# -- one line each ------------------------------------------------------------------------------


def test_incident_lines() -> None:
    written = incident(title="Photos\nfail\x1b[2J")
    assert incident_line(written, NOW).split("  ") == [
        "7",
        "open/investigating",
        "written",
        "major",
        "Photos fail [2J",
        "questcity-api/s3",
        "opened 2026-12-08T00:55Z",
        "1 h 5 min so far",
    ]
    automatic = incident(origin=IncidentOrigin.AUTO, phase=None, written_by=None)
    assert incident_line(automatic, NOW).split("  ")[1:3] == ["open", "auto"]
    taken = incident(
        origin=IncidentOrigin.AUTO,
        state=IncidentState.RESOLVED,
        phase="resolved",
        resolved_at=NOW - 5 * 60,
        postmortem="x",
        postmortem_at=NOW,
    )
    fields = incident_line(taken, NOW).split("  ")
    assert fields[1:3] == ["resolved/resolved", "taken over"]
    assert fields[-2:] == ["1 h", "postmortem"]


def test_maintenance_lines() -> None:
    assert maintenance_line(window(), NOW).split("  ") == [
        "3",
        "upcoming",
        "2026-12-08T03:00Z → 2026-12-08T05:00Z (2 h)",
        "Database upgrade",
        "questcity-api/database",
        "by alice",
    ]
    assert maintenance_line(window(), NOW + 2 * HOUR).split("  ")[1] == "active"
    assert maintenance_line(window(), NOW + 4 * HOUR).split("  ")[1] == "completed"
    cancelled = window(cancelled_at=NOW, cancelled_by="bob")
    fields = maintenance_line(cancelled, NOW).split("  ")
    assert (fields[1], fields[-1]) == ("cancelled", "cancelled 2026-12-08T02:00Z by bob")
