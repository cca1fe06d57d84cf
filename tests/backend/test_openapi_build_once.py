"""``GET /openapi.json`` builds its document at most once per app, however many first requests
arrive together (a build takes about a second and a hundred megabytes: one build each would let
anyone starve a fresh replica of the public endpoint), and a failed build is tried again.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from backend.api import openapi
from backend.api.models import fields
from backend.app import create_app
from backend.settings import Settings

CONCURRENT = 12


class CountingBuild:
    """Stands in for the build: counts the calls, and holds every build until the test has sent
    all its requests, so they all arrive while the first build runs."""

    def __init__(self, real: Callable[[Sequence[BaseRoute]], bytes], *, failures: int = 0) -> None:
        self.real = real
        self.calls = 0
        self.failures = failures
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, routes: Sequence[BaseRoute]) -> bytes:
        with self._lock:
            self.calls += 1
            fail = self.calls <= self.failures
        if not self.release.wait(timeout=30):
            raise AssertionError("the test never released the build")
        if fail:
            raise RuntimeError("a build that fails")
        return self.real(routes)


def _app(tmp_path: Path) -> Starlette:
    return create_app(Settings(keys_dir=tmp_path / "keys"))  # this endpoint needs no lifespan


def _client(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def _all_waiting(requests: list[asyncio.Task[httpx.Response]]) -> None:
    """Lets the event loop run until every request is inside the endpoint (none can finish: the
    build is held)."""
    for _ in range(50):
        await asyncio.sleep(0)
    assert not any(request.done() for request in requests)


async def test_concurrent_first_requests_share_one_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = CountingBuild(openapi.serialised_document)
    monkeypatch.setattr(openapi, "serialised_document", build)
    app = _app(tmp_path)
    async with _client(app) as client:
        requests = [asyncio.create_task(client.get("/openapi.json")) for _ in range(CONCURRENT)]
        await _all_waiting(requests)
        build.release.set()
        responses = await asyncio.gather(*requests)
        later = await client.get("/openapi.json")
    assert [response.status_code for response in responses] == [200] * CONCURRENT
    assert {response.content for response in [*responses, later]} == {responses[0].content}
    assert responses[0].json()["openapi"] == "3.1.0"
    assert build.calls == 1


async def test_each_app_builds_its_own_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = CountingBuild(openapi.serialised_document)
    build.release.set()
    monkeypatch.setattr(openapi, "serialised_document", build)
    for n in range(2):
        async with _client(_app(tmp_path / str(n))) as client:
            assert (await client.get("/openapi.json")).status_code == 200
    assert build.calls == 2


async def test_a_failed_build_is_tried_again_by_the_next_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = CountingBuild(openapi.serialised_document, failures=1)
    monkeypatch.setattr(openapi, "serialised_document", build)
    app = _app(tmp_path)
    async with _client(app) as client:
        requests = [asyncio.create_task(client.get("/openapi.json")) for _ in range(CONCURRENT)]
        await _all_waiting(requests)
        build.release.set()
        failed = await asyncio.gather(*requests)
        retried = await client.get("/openapi.json")
        again = await client.get("/openapi.json")
    # The requests that shared the failed build all fail with it; the next one builds again.
    assert [response.status_code for response in failed] == [500] * CONCURRENT
    assert retried.status_code == 200
    assert again.content == retried.content
    assert build.calls == 2


class WatchedLock:
    """The memo's lock, telling when the thread called ``second`` asks for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.second_asks = threading.Event()

    def __enter__(self) -> None:
        if threading.current_thread().name == "second":
            self.second_asks.set()
        self.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def test_a_slow_pattern_is_built_once_when_documents_are_built_in_threads_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Documents of several apps built at once (each in its own worker thread) share one build of
    each slow pattern: a second thread asking while the first builds waits for its result."""
    watched = WatchedLock()
    monkeypatch.setattr(fields, "_PATTERNS_LOCK", watched)
    calls: list[str] = []
    answers: list[str] = []

    def ask() -> None:
        answers.append(fields._built(slow_pattern))

    second = threading.Thread(target=ask, name="second")

    def slow_pattern() -> str:
        calls.append("built")
        if len(calls) == 1:
            second.start()
            # The build ends only once the second thread is at the memo's door.
            assert watched.second_asks.wait(timeout=10), "the second thread never asked"
        return "^x$"

    assert fields._built(slow_pattern) == "^x$"
    second.join(timeout=10)
    assert not second.is_alive()
    assert answers == ["^x$"]
    assert calls == ["built"]
