"""ETag and Cache-Control on every output, 304s, and a cache that lasts until new data arrives."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from monitor.store import HistoryReader, Status, StoreUnavailable
from statuspage.source import StoreSource
from tests.statuspage.conftest import Client, Store
from tests.statuspage.scenarios import API, DAY, EU, HEALTHY_SERVICES, NOW, SCENARIOS, check

ROUTES = (
    "/",
    "/api/v2/summary.json",
    "/api/v2/status.json",
    "/api/v2/components.json",
    "/api/v2/incidents.json",
    "/history.atom",
    "/badge/quests-and-accounts.svg",
    "/incidents/2",
    "/badge/unknown.svg",
    "/incidents/999",
    "/no/such/page",
)


class Ticking:
    """A clock a test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the reader's methods as they are called (the page's reads of the store)."""
    calls: list[str] = []
    for name in ("components", "latest", "series_many", "incidents", "incident"):
        original = getattr(HistoryReader, name)

        def spy(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kw)

        monkeypatch.setattr(HistoryReader, name, spy)
    return calls


async def test_every_output_has_validators(store: Store, client: Client) -> None:
    await SCENARIOS["open_incident"](store.writer)
    async with client() as http:
        for path in ROUTES:
            for headers in ({}, {"accept-encoding": "identity"}):
                response = await http.get(path, headers=headers)
                assert response.headers["etag"].startswith('"'), path
                assert response.headers["cache-control"], path
        posted = await http.post("/")
    assert posted.status_code == 405
    assert posted.headers["etag"] and posted.headers["cache-control"] == "no-store"
    assert posted.headers["allow"] == "GET, HEAD"


async def test_if_none_match_answers_304(store: Store, client: Client) -> None:
    await SCENARIOS["all_operational"](store.writer)
    async with client() as http:
        for path in ("/", "/api/v2/summary.json", "/history.atom", "/badge/images.svg"):
            for encoding in ("gzip", "identity"):
                first = await http.get(path, headers={"accept-encoding": encoding})
                etag = first.headers["etag"]
                for condition in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
                    again = await http.get(
                        path, headers={"if-none-match": condition, "accept-encoding": encoding}
                    )
                    assert again.status_code == 304, (path, condition)
                    assert again.content == b""
                    assert again.headers["etag"] == etag
                    assert again.headers["cache-control"] == first.headers["cache-control"]
                other = await http.get(
                    path, headers={"if-none-match": '"nope"', "accept-encoding": encoding}
                )
                assert other.status_code == 200 and other.content == first.content


async def test_gzip_when_asked(store: Store, client: Client) -> None:
    await SCENARIOS["all_operational"](store.writer)
    async with client() as http:
        zipped = await http.get("/", headers={"accept-encoding": "gzip"})
        plain = await http.get("/", headers={"accept-encoding": "identity"})
        refused = await http.get("/", headers={"accept-encoding": "gzip;q=0"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["etag"] == plain.headers["etag"][:-1] + '-gz"'
    assert int(zipped.headers["content-length"]) < int(plain.headers["content-length"]) / 4
    assert zipped.text == plain.text
    assert "content-encoding" not in plain.headers and "content-encoding" not in refused.headers
    assert zipped.headers["vary"] == plain.headers["vary"] == "Accept-Encoding, Accept-Language"


async def test_cached_until_new_data_arrives(
    store: Store, client: Client, reads: list[str]
) -> None:
    await SCENARIOS["all_operational"](store.writer)
    async with client() as http:
        first = await http.get("/")
        assert "components" in reads and "series_many" in reads
        reads.clear()
        again = await http.get("/")
        json_again = await http.get("/api/v2/summary.json")
        assert reads == []  # only the change token was read
        assert again.headers["etag"] == first.headers["etag"]
        assert json_again.json()["status"]["indicator"] == "none"

        await check(store.writer, EU, NOW - 10, Status.UNREACHABLE, None)
        changed = await http.get("/")
        summary = (await http.get("/api/v2/summary.json")).json()
    assert reads != []
    assert changed.headers["etag"] != first.headers["etag"]
    assert "<span>Major outage</span>" in changed.text
    assert summary["status"]["indicator"] == "critical"


async def test_a_new_check_redraws_todays_segments(store: Store, client: Client) -> None:
    """Segments are kept between renders, by their figures: a day whose figures moved is drawn
    anew, the days that did not are the same."""
    await SCENARIOS["all_operational"](store.writer)
    async with client() as http:
        before = await http.get("/")
        await check(store.writer, EU, NOW - 10, Status.UNREACHABLE, None)
        after = await http.get("/")

    def labels(page: str, day: str) -> list[str]:
        return re.findall(rf'aria-label="{day}: ([^"]*)"', page)

    assert labels(after.text, "13 May 2025") == labels(before.text, "13 May 2025")
    today_before, today_after = (
        labels(before.text, "14 May 2025"),
        labels(after.text, "14 May 2025"),
    )
    assert not any("major outage" in label for label in today_before)
    assert sum("worst: major outage" in label for label in today_after) == 1  # the EU target's


async def test_incident_notes_invalidate_too(store: Store, client: Client) -> None:
    """An event without a check (an operator's note) is new data as well; no alert needed."""
    await SCENARIOS["partial_outage"](store.writer)
    async with client() as http:
        before = await http.get("/incidents/2")
        await store.writer.add_note(2, "Fixed the bucket policy.", public=True, actor="x", at=NOW)
        after = await http.get("/incidents/2")
    assert before.headers["etag"] != after.headers["etag"]
    assert "Fixed the bucket policy." in after.text


async def test_store_asked_at_most_once_per_interval(store: Store, client: Client) -> None:
    await SCENARIOS["all_operational"](store.writer)
    monotonic = Ticking(100.0)
    async with client(monotonic=monotonic, revalidate_after=5.0) as http:
        first = await http.get("/api/v2/status.json")
        await check(store.writer, API, NOW - 5, Status.UNREACHABLE, None)
        monotonic.now += 4.9
        still = await http.get("/api/v2/status.json")
        monotonic.now += 0.2
        fresh = await http.get("/api/v2/status.json")
    assert first.json()["status"]["indicator"] == still.json()["status"]["indicator"] == "none"
    assert fresh.json()["status"]["indicator"] == "critical"


async def test_time_moves_the_page_without_new_data(store: Store, client: Client) -> None:
    """A new hour shifts the 24 h line and the bars; no check for 5 minutes marks the page stale."""
    await SCENARIOS["all_operational"](store.writer)
    clock = Ticking(NOW)
    async with client(clock=clock) as http:
        first = await http.get("/")
        clock.now = NOW + 4 * 60
        same = await http.get("/")
        clock.now = NOW + 6 * 60
        stale = await http.get("/")
        clock.now = NOW + DAY
        tomorrow = await http.get("/")
    assert same.headers["etag"] == first.headers["etag"]
    assert "may be out of date" not in first.text
    assert "may be out of date" in stale.text
    assert stale.headers["etag"] != first.headers["etag"]
    assert tomorrow.text.count("15 May 2025: no data") == 4  # a new, empty day on every bar


async def test_store_down_serves_the_last_page(
    store: Store,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await SCENARIOS["all_operational"](store.writer)
    await check(store.writer, API, NOW - 1, Status.HEALTHY, 40.0, HEALTHY_SERVICES)

    async def broken(self: StoreSource) -> float:
        raise StoreUnavailable("cannot use the store: disk I/O error")

    async with client() as http:
        first = await http.get("/")
        monkeypatch.setattr(StoreSource, "change_token", broken)
        with caplog.at_level(logging.WARNING, logger="statuspage"):
            during = await http.get("/")
    assert during.status_code == 200 and during.text == first.text
    assert "cannot read the monitor's store" in caplog.text


async def test_store_down_from_the_start_is_a_503(
    store: Store, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: StoreSource) -> float:
        raise StoreUnavailable("cannot use the store: unable to open database file")

    monkeypatch.setattr(StoreSource, "change_token", broken)
    async with client() as http:
        response = await http.get("/")
        summary = await http.get("/api/v2/summary.json")
    assert response.status_code == summary.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert response.headers["cache-control"] == "no-store"
    assert "cannot read its data right now" in response.text
    assert "disk" not in response.text and "unable to open" not in response.text
