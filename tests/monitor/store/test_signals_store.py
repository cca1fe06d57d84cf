"""The store's part of the signals (#14), over SQLite and PostgreSQL (the ``store`` fixture):
alerts re-written, resolved with their last figures and acknowledged; silences; incidents that
list the components their cause affects; critical components; manual checks kept out of every
roll-up and latency series; texts from people bounded; and revision 0005 over a store of 0004
with its rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.figures import LAST_24H, Uptime, read_uptimes
from monitor.store import (
    TARGET_COMPONENT,
    AlertState,
    Component,
    HistoryReader,
    IncidentComponent,
    IncidentEvent,
    IncidentState,
    Silence,
    Status,
    open_engine,
)
from monitor.store.migrate import StoreUpgrade, alembic_config, upgrade_store
from monitor.store.migrations import HEAD_REVISION
from monitor.store.writer import HistoryWriter
from tests.monitor.store.support import (
    DAY0,
    HOUR,
    Store,
    check,
    empty_store_url,
    reading_engine,
    sample,
)

T = DAY0 + 600


# -- alerts: re-written, resolved with their figures, acknowledged ------------------------------


async def test_an_alert_is_rewritten_with_its_figures_and_read_alone(store: Store) -> None:
    writer, reader = store.writer, store.reader
    alert_id = await writer.fire_alert("s3_failure_rate", "api", "s3", "31 % failing", T)
    fired = await reader.alert(alert_id)
    assert fired is not None
    assert (fired.updated_at, fired.acked_at, fired.acked_by) == (None, None, None)
    assert fired.component == "api/s3"
    before = await reader.last_change()

    await writer.update_alert(alert_id, "100 % failing", T + 10)

    updated = await reader.alert(alert_id)
    assert updated is not None
    assert (updated.summary, updated.updated_at, updated.state) == (
        "100 % failing",
        T + 10,
        AlertState.FIRING,
    )
    assert await reader.last_change() > before
    assert await reader.alerts() == [updated]
    assert await reader.alert(alert_id + 1) is None


async def test_a_resolved_alert_keeps_its_last_figures_and_its_time(store: Store) -> None:
    writer, reader = store.writer, store.reader
    alert_id = await writer.fire_alert("s3_failure_rate", "api", "s3", "100 % failing", T)

    await writer.resolve_alert(alert_id, T + 60, summary="0 % failing (was 100 %)")
    await writer.resolve_alert(alert_id, T + 120)  # again: nothing moves
    await writer.update_alert(alert_id, "late figures", T + 130)  # a resolved alert is final

    resolved = await reader.alert(alert_id)
    assert resolved is not None
    assert (resolved.state, resolved.resolved_at, resolved.summary, resolved.updated_at) == (
        AlertState.RESOLVED,
        T + 60,
        "0 % failing (was 100 %)",
        T + 60,
    )


async def test_an_ack_is_kept_once_and_says_who_and_when(store: Store) -> None:
    writer, reader = store.writer, store.reader
    alert_id = await writer.fire_alert("service_down", "api", "database", "down", T)
    before = await reader.last_change()

    first = await writer.ack_alert(alert_id, "alice", T + 5)
    again = await writer.ack_alert(alert_id, "bob", T + 9)

    assert first is not None and again is not None
    assert (first.acked_by, first.acked_at, first.state) == ("alice", T + 5, AlertState.FIRING)
    assert again == first  # idempotent: the first ack's who and when
    assert await reader.alert(alert_id) == first
    assert await reader.last_change() > before
    assert await writer.ack_alert(alert_id + 1, "alice", T) is None  # no such alert


async def test_a_resolved_alert_is_not_acked(store: Store) -> None:
    writer = store.writer
    alert_id = await writer.fire_alert("service_down", "api", "database", "down", T)
    await writer.resolve_alert(alert_id, T + 1)

    found = await writer.ack_alert(alert_id, "alice", T + 5)

    assert found is not None
    assert (found.state, found.acked_at, found.acked_by) == (AlertState.RESOLVED, None, None)


async def test_names_and_reasons_are_bounded_and_printable(store: Store) -> None:
    writer, reader = store.writer, store.reader
    alert_id = await writer.fire_alert("service_down", "api", "database", "down", T)

    acked = await writer.ack_alert(alert_id, " al\nice\x00\x1b[31m" + "x" * 500, T)
    await writer.add_silence(
        "api/" + "s" * 600 + "\r\n", T, T + HOUR, "bob\u202e\ud800", "deploy\twindow " * 100
    )

    assert acked is not None and acked.acked_by is not None
    assert acked.acked_by.startswith("al ice  [31mxxx") and len(acked.acked_by) == 200
    [silence] = await reader.silences(at=T)
    assert silence.component == "api/" + "s" * 397
    assert silence.created_by == "bob"
    assert silence.reason is not None and len(silence.reason) <= 500
    assert silence.reason.startswith("deploy window deploy")
    assert all(c.isprintable() for c in silence.reason + silence.created_by + acked.acked_by)
    for bad in ("", " \n\x00 "):
        with pytest.raises(ValueError, match="name of who"):
            await writer.ack_alert(alert_id, bad, T)
        with pytest.raises(ValueError, match="name of who"):
            await writer.add_silence("api", T, T + 1, bad, None)
        with pytest.raises(ValueError, match="component key"):
            await writer.add_silence(bad, T, T + 1, "bob", None)


# -- silences ------------------------------------------------------------------------------------


async def test_silences_in_force_at_a_time_newest_first(store: Store) -> None:
    writer, reader = store.writer, store.reader
    before = await reader.last_change()
    ended = await writer.add_silence("api", T - 2 * HOUR, T - HOUR, "alice", None)
    api = await writer.add_silence("api", T - 60, T + HOUR, "alice", "deploy")
    s3 = await writer.add_silence("api/s3", T, T + 2 * HOUR, "bob", None)
    later = await writer.add_silence("web", T + HOUR, T + 3 * HOUR, "carol", None)
    assert await reader.last_change() > before

    assert await reader.silences(at=T) == [
        Silence(s3, "api/s3", T, T + 2 * HOUR, "bob", None),
        Silence(api, "api", T - 60, T + HOUR, "alice", "deploy"),
    ]
    assert [s.id for s in await reader.silences(at=T, limit=1)] == [s3]
    assert [s.id for s in await reader.silences(at=T + HOUR)] == [later, s3]  # ends: not in force
    assert [s.id for s in await reader.silences(at=T - HOUR - 1)] == [ended]
    assert await reader.silences(at=T + 3 * HOUR) == []
    for start, end in ((T, T), (T, T - 1), (T, float("inf")), (float("nan"), T)):
        with pytest.raises(ValueError, match="end after it starts"):
            await writer.add_silence("api", start, end, "alice", None)


# -- incidents by cause ---------------------------------------------------------------------------

S3_DOWN = [
    IncidentComponent("api", TARGET_COMPONENT, Status.DEGRADED),
    IncidentComponent("api", "s3", Status.UNHEALTHY),
]


async def test_an_incident_lists_its_components_cause_first(store: Store) -> None:
    writer, reader = store.writer, store.reader
    incident_id = await writer.open_incident(
        "api", "s3", Status.UNHEALTHY, T, "Photos down", components=S3_DOWN
    )

    cause, api = S3_DOWN[1], S3_DOWN[0]
    found = await reader.incident(incident_id)
    assert found is not None and found.components == (cause, api)
    [listed] = await reader.incidents()
    assert listed.components == (cause, api)
    assert [e.kind for e in found.events] == ["opened"]

    before = await reader.last_change()
    database = IncidentComponent("api", "database", Status.UNHEALTHY, critical=True)
    await writer.set_incident_components(
        incident_id,
        [api, IncidentComponent("api", "", Status.UNREACHABLE), database, cause],
        T + 30,
    )

    replaced = await reader.incident(incident_id)
    assert replaced is not None
    assert replaced.components == (  # replaced; a component named twice is one, its worst
        cause,
        IncidentComponent("api", "", Status.UNREACHABLE),
        database,
    )
    assert replaced.updated_at == T + 30
    assert await reader.last_change() > before


async def test_an_incident_is_retitled_with_its_impact(store: Store) -> None:
    writer, reader = store.writer, store.reader
    incident_id = await writer.open_incident("api", "s3", Status.DEGRADED, T, "Photos slow")
    before = await reader.last_change()

    await writer.retitle_incident(
        incident_id, "Major outage of Photos" + "!" * 400, Status.UNHEALTHY
    )

    found = await reader.incident(incident_id)
    assert found is not None
    assert (found.title[:22], len(found.title), found.impact) == (
        "Major outage of Photos",
        300,
        Status.UNHEALTHY,
    )
    assert found.components == ()
    assert await reader.last_change() > before


async def test_the_open_incident_of_a_component_is_its_cause_or_lists_it(store: Store) -> None:
    writer, reader = store.writer, store.reader
    s3 = await writer.open_incident("api", "s3", Status.UNHEALTHY, T, "S3", components=S3_DOWN)
    database = await writer.open_incident(
        "api",
        "database",
        Status.UNHEALTHY,
        T + 10,
        "DB",
        components=[
            IncidentComponent("api", "database", Status.UNHEALTHY, critical=True),
            IncidentComponent("api", "", Status.UNHEALTHY),
        ],
    )
    web = await writer.open_incident("web", "", Status.UNREACHABLE, T, "Web")
    await writer.resolve_incident(web, T + 20, "fixed")

    async def open_for(target: str, service: str) -> int | None:
        found = await reader.open_incident_for(target, service)
        return None if found is None else found.id

    assert await open_for("api", "s3") == s3
    assert await open_for("api", "database") == database
    assert await open_for("api", "") == database  # in both: the newest
    assert await open_for("web", "") is None  # resolved
    assert await open_for("api", "cache") is None
    found = await reader.open_incident_for("api", "s3")
    assert found is not None and found.components[0].service == "s3"
    # A breaker reset lands where an ack does: the API's, listed by the database's incident.
    assert await writer.record_reset("api", "", "alice", "open", T + 30) == database


async def test_incidents_read_their_components_in_one_statement(store: Store) -> None:
    for n in range(5):
        await store.writer.open_incident(
            f"t{n}", "s3", Status.UNHEALTHY, T + n, f"S{n}", components=S3_DOWN
        )
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    engine = reading_engine(store)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        listed = await store.reader.incidents(with_events=True)
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    assert [len(i.components) for i in listed] == [2] * 5
    assert len([s for s in statements if "incident_components" in s]) == 1
    assert len(statements) <= 4  # incidents, events, components (and SQLite's BEGIN, if any)


# -- critical components -------------------------------------------------------------------------


async def test_a_component_is_critical_as_its_check_says(store: Store) -> None:
    writer, reader = store.writer, store.reader
    config = [
        Component("api", TARGET_COMPONENT, "API", "Production", 0),
        Component("api", "database", "Database", "Production", 1),
    ]
    await writer.sync_components(config)
    database = Component("api", "database", "Database", "Production", 1, critical=True)

    await writer.record_check(check(T), new_components=[database])
    assert [c.critical for c in await reader.components()] == [False, True]

    await writer.sync_components(config)  # the config does not know: the flag stays
    assert [c.critical for c in await reader.components()] == [False, True]

    not_critical = Component("api", "database", "Database", "Production", 1, critical=False)
    await writer.record_check(check(T + 10), new_components=[not_critical])
    assert [c.critical for c in await reader.components()] == [False, False]


# -- manual checks --------------------------------------------------------------------------------


async def test_a_manual_check_sets_the_state_and_enters_no_figure(store: Store) -> None:
    writer, reader = store.writer, store.reader
    await writer.record_check(check(T, latency_ms=10.0, services=(sample("db", response_ms=5.0),)))
    manual = check(
        T + 10,
        Status.UNHEALTHY,
        latency_ms=443.0,
        services=(sample("db", Status.UNHEALTHY, response_ms=400.0),),
    )
    await writer.record_check(replace(manual, manual=True))

    states = await reader.states()
    assert states[("api", TARGET_COMPONENT)].status is Status.UNHEALTHY
    assert states[("api", "db")].status is Status.UNHEALTHY
    latest = await reader.latest("api")
    assert latest is not None and latest.record.manual and latest.record.latency_ms == 443.0
    # Roll-ups, bars, uptime and the charts are the scheduled check's alone.
    for service, latency in ((TARGET_COMPONENT, 10.0), ("db", 5.0)):
        [bar] = await reader.bars("api", service, period="hour", count=1, now=T + 20)
        figures = (bar.checks, bar.up, bar.worst, bar.avg_latency_ms)
        assert figures == (1, 1, Status.HEALTHY, latency)
        uptimes = await read_uptimes(reader, [("api", service)], T + 20, (LAST_24H,))
        assert uptimes[("api", service)] == (Uptime(checks=1, up=1),)
        [point] = await reader.latency_series("api", service, hours=1, now=T + 20)
        assert (point.avg_ms, point.max_ms) == (latency, latency)
        assert await reader.recent_latencies("api", service) == [latency]
    many = await reader.recent_latencies_many([("api", TARGET_COMPONENT), ("api", "db")])
    assert many == {("api", TARGET_COMPONENT): [10.0], ("api", "db"): [5.0]}
    series = await reader.latency_series_many([("api", "db")], hours=1, now=T + 20)
    assert [p.max_ms for p in series[("api", "db")]] == [5.0]


async def test_a_batch_of_manual_checks_alone_is_stored(store: Store) -> None:
    await store.writer.record_check(replace(check(T, Status.DEGRADED), manual=True))

    assert (await store.reader.states())[("api", TARGET_COMPONENT)].status is Status.DEGRADED
    [bar] = await store.reader.bars("api", period="hour", count=1, now=T)
    assert (bar.checks, bar.worst) == (0, Status.UNKNOWN)  # an empty hour
    figures = await read_uptimes(store.reader, [("api", TARGET_COMPONENT)], T, (LAST_24H,))
    assert figures[("api", TARGET_COMPONENT)] == (Uptime(),)  # no data


# -- revision 0005 over a store of 0004 ------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from empty_store_url(request.param, request, tmp_path)


async def _store_of_0004(url: str) -> AsyncEngine:
    """A store as the fleet's monitor (revision 0004) left it, with a row in each table that
    0005 changes."""
    engine = open_engine(url)

    def upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")

    async with engine.begin() as connection:
        await connection.run_sync(upgrade)
        for statement in (
            "INSERT INTO checks (target, at, status, latency_ms, http_status, error)"
            f" VALUES ('api', {T}, 'healthy', 12.5, 200, NULL)",
            "INSERT INTO components (target, service, display_name, group_name, position)"
            " VALUES ('api', 'database', 'Database', 'Production', 1)",
            "INSERT INTO alerts (rule, target, service, state, summary, started_at, notified)"
            f" VALUES ('breaker_open', 'api', 'database', 'firing', 'open', {T}, 'firing')",
            "INSERT INTO incidents (target, service, state, impact, title, opened_at, updated_at)"
            f" VALUES ('api', 'database', 'open', 'unhealthy', 'DB down', {T}, {T})",
        ):
            await connection.execute(text(statement))
    return engine


async def test_revision_0005_keeps_a_0004_stores_rows(empty_url: str) -> None:
    engine = await _store_of_0004(empty_url)
    try:
        # A status page upgraded before its monitor reads the old store as it is.
        old = HistoryReader(engine)
        [component] = await old.components()
        assert not component.critical
        [incident] = await old.incidents(with_events=True)
        assert (incident.title, incident.components) == ("DB down", ())
        assert await old.incident(incident.id) == incident

        done = await upgrade_store(engine)

        assert done == StoreUpgrade(before="0004", after=HEAD_REVISION, recognised=False)
        reader, writer = HistoryReader(engine), HistoryWriter(engine)
        assert await reader.components() == [
            Component("api", "database", "Database", "Production", 1, critical=False)
        ]
        [alert] = await reader.alerts()
        assert (alert.summary, alert.notified, alert.acked_at, alert.updated_at) == (
            "open",
            AlertState.FIRING,
            None,
            None,
        )
        latest = await reader.latest("api")
        assert latest is not None and not latest.record.manual
        assert await reader.recent_latencies("api") == [12.5]
        [incident] = await reader.incidents(state=IncidentState.OPEN)
        assert (incident.title, incident.components) == ("DB down", ())
        # And takes the new writes.
        acked = await writer.ack_alert(alert.id, "alice", T + 1)
        assert acked is not None and acked.acked_by == "alice"
        await writer.add_silence("api/database", T, T + HOUR, "alice", None)
        assert len(await reader.silences(at=T)) == 1
        await writer.set_incident_components(
            incident.id, [IncidentComponent("api", "database", Status.UNHEALTHY, True)], T + 2
        )
        found = await reader.open_incident_for("api", "database")
        assert found is not None and found.components[0].critical
        await writer.add_event(
            incident.id, IncidentEvent(T + 3, "ack", None, "Acknowledged by alice.", False)
        )
    finally:
        await engine.dispose()
