"""Private ``[[checks]]`` and what people write for the public (#16): ``questcity incident open``
and ``questcity maintenance schedule`` (and the TUI's dialogs: one implementation,
:mod:`monitor.public_actions`) accept public component keys only. A private check's key is
refused with why and how to make it public, an unknown key with the public keys alone listed;
nothing is written. Against a real store (SQLite, migrated) whose catalogue the daemon's sync
wrote."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from monitor.public_actions import PublicActionError, open_incident, schedule_maintenance
from monitor.store import Component, HistoryReader, create_schema, open_engine
from monitor.store.writer import HistoryWriter
from tests.monitor.store.support import migrated_store_url

NOW = 1_796_695_200.0  # 2026-12-08T02:00Z
HOUR = 3600.0
CATALOGUE = [
    Component("questcity-api", "", "QuestCity API", "Core", 0),
    Component("questcity-api", "s3", "Photos", "Core", 1),
    Component("front-door", "", "Website", "Edge", 10_000, kind="http", public=True),
    Component("ledger", "", "Ledger", "Edge", 10_001, kind="postgres", public=False),
]


Stores = tuple[HistoryReader, HistoryWriter]
Action = Callable[[Stores, list[str]], Awaitable[int]]


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from migrated_store_url("sqlite", request, tmp_path)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Stores]:
    engine = open_engine(store_url)
    await create_schema(engine)
    writer = HistoryWriter(engine)
    await writer.sync_components(CATALOGUE)
    try:
        yield HistoryReader(engine), writer
    finally:
        await engine.dispose()


async def incident(store: Stores, keys: list[str]) -> int:
    reader, writer = store
    return await open_incident(
        reader, writer, title="Payments fail", components=keys, by="alice", at=NOW
    )


async def window(store: Stores, keys: list[str]) -> int:
    reader, writer = store
    return await schedule_maintenance(
        reader,
        writer,
        title="Ledger upgrade",
        components=keys,
        starts_at=NOW + HOUR,
        ends_at=NOW + 2 * HOUR,
        by="alice",
        at=NOW,
    )


async def nothing_written(reader: HistoryReader) -> bool:
    listed = await reader.incidents(with_events=False, and_open=True)
    return not listed and not await reader.maintenances(since=0)


@pytest.mark.parametrize("action", [incident, window], ids=["incident", "maintenance"])
async def test_a_private_checks_key_is_refused_saying_it_is_not_public(
    store: Stores, action: Action
) -> None:
    for keys in (["ledger"], ["front-door", "ledger"]):  # alone, or beside a public one
        with pytest.raises(PublicActionError) as caught:
            await action(store, keys)
        said = str(caught.value)
        assert "'ledger' is a private check: it is not public" in said
        assert "set `public = true` in its [[checks]] entry (name = 'ledger')" in said
    assert await nothing_written(store[0])


@pytest.mark.parametrize("action", [incident, window], ids=["incident", "maintenance"])
async def test_an_unknown_key_lists_the_public_keys_alone(store: Stores, action: Action) -> None:
    with pytest.raises(PublicActionError) as caught:
        await action(store, ["front-dor"])
    said = str(caught.value)
    assert "no component 'front-dor' in the store. Did you mean front-door?" in said
    assert said.endswith("Its public components: questcity-api, questcity-api/s3, front-door")
    assert "ledger" not in said
    assert await nothing_written(store[0])


async def test_public_checks_and_targets_are_accepted(
    store: Stores,
) -> None:
    reader = store[0]

    opened = await incident(store, ["front-door", "questcity-api/s3"])
    scheduled = await window(store, ["front-door"])

    found = await reader.incident(opened)
    assert found is not None
    assert [(c.target, c.service) for c in found.components] == [
        ("front-door", ""),
        ("questcity-api", "s3"),
    ]
    (listed,) = await reader.maintenances(since=0)
    assert (listed.id, listed.components) == (scheduled, ("front-door",))


async def test_a_check_made_private_at_the_next_start_is_refused_from_then_on(
    store: Stores,
) -> None:
    reader, writer = store
    await incident(store, ["front-door"])  # public now: accepted
    await writer.sync_components(
        [*CATALOGUE[:2], Component("front-door", "", "Website", "Edge", 10_000, kind="http",
                                   public=False), CATALOGUE[3]]
    )  # fmt: skip

    with pytest.raises(PublicActionError, match="'front-door' is a private check"):
        await window(store, ["front-door"])
    assert await reader.maintenances(since=0) == []


async def test_a_store_of_private_checks_alone_says_so(
    store: Stores,
) -> None:
    reader, writer = store
    await writer.sync_components([CATALOGUE[3]])

    with pytest.raises(PublicActionError) as caught:
        await incident(store, ["questcity-api"])
    assert str(caught.value) == (
        "no public component 'questcity-api': every component in the store is a private check "
        "(set `public = true` in a [[checks]] entry to tell the public about it)"
    )
    assert await nothing_written(reader)
