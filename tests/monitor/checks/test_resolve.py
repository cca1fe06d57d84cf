"""Name lookups for checks (:mod:`monitor.checks.resolve`): one lookup per name at a time, kept
a short while, in threads of their own, so a name whose name server never answers holds one
thread and never makes a check of another name time out."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from monitor.checks.resolve import (
    ANSWER_SECONDS,
    FAILURE_SECONDS,
    NOT_RESOLVED,
    PENDING,
    STALE_SECONDS,
    Resolver,
    Unresolved,
)
from monitor.checks.run import CheckRunner
from monitor.checks.spec import Check, CheckKind, HttpSettings, Outcome, TcpSettings
from monitor.store.models import Status
from shared.resilience import SYSTEM_CLOCK
from tests.monitor.checks.http_target import HttpTarget, Reply
from tests.support.polling import eventually


class Names:
    """A lookup whose answers the test sets; a name in ``stalled`` blocks until released (a
    name server that never answers)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {}
        self.stalled: set[str] = set()
        self.release = threading.Event()
        self.calls: list[str] = []
        self.started = threading.Semaphore(0)

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        self.started.release()
        if host in self.stalled:
            self.release.wait(10.0)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def names() -> Iterator[Names]:
    found = Names()
    yield found
    found.release.set()


@pytest.fixture
async def resolver(names: Names) -> AsyncIterator[tuple[Resolver, Ticks]]:
    ticks = Ticks()
    made = Resolver(lookup=names, threads=2, monotonic=ticks)
    yield made, ticks
    names.release.set()
    made.close()


async def test_an_ip_literal_is_used_as_it_is(
    names: Names, resolver: tuple[Resolver, Ticks]
) -> None:
    lookups, _ = resolver
    assert await lookups.addresses("127.0.0.1", 80) == ("127.0.0.1",)
    assert await lookups.addresses("[::1]", 80) == ("::1",)
    assert names.calls == []


async def test_answers_and_failures_are_kept_a_short_while(
    names: Names, resolver: tuple[Resolver, Ticks]
) -> None:
    lookups, ticks = resolver
    names.answers["db.test"] = ["10.0.0.5", "10.0.0.6"]
    assert await lookups.addresses("db.test", 5432) == ("10.0.0.5", "10.0.0.6")
    with pytest.raises(Unresolved) as failed:
        await lookups.addresses("gone.test", 5432)
    assert failed.value.reason == NOT_RESOLVED
    ticks.now += min(ANSWER_SECONDS, FAILURE_SECONDS) - 0.1
    assert await lookups.addresses("DB.test", 5432) == ("10.0.0.5", "10.0.0.6")
    with pytest.raises(Unresolved):
        await lookups.addresses("gone.test", 5432)
    assert names.calls == ["db.test", "gone.test"], "each looked up once"
    names.answers["gone.test"] = ["10.0.0.9"]
    ticks.now += FAILURE_SECONDS
    assert await lookups.addresses("gone.test", 5432) == ("10.0.0.9",)
    assert names.calls.count("gone.test") == 2, "a failure is looked up again after a while"


async def test_an_old_answer_is_used_while_a_fresh_lookup_runs_behind_it(
    names: Names, resolver: tuple[Resolver, Ticks]
) -> None:
    lookups, ticks = resolver
    names.answers["api.test"] = ["10.0.0.1"]
    await lookups.addresses("api.test", 443)
    names.answers["api.test"] = ["10.0.0.2"]
    names.stalled.add("api.test")
    ticks.now += ANSWER_SECONDS + 1
    assert await lookups.addresses("api.test", 443) == ("10.0.0.1",), "no waiting for it"
    names.release.set()
    await eventually(_answer_is(lookups, "api.test", "10.0.0.2"), "the fresh answer is kept")
    ticks.now += STALE_SECONDS
    names.stalled.clear()
    assert await lookups.addresses("api.test", 443) == ("10.0.0.2",)


async def test_runs_of_one_name_at_once_share_one_lookup(
    names: Names, resolver: tuple[Resolver, Ticks]
) -> None:
    lookups, _ = resolver
    names.answers["web.test"] = ["10.0.0.7"]
    names.stalled.add("web.test")
    runs = [asyncio.create_task(lookups.addresses("web.test", 443)) for _ in range(5)]
    await asyncio.to_thread(names.started.acquire, True, 5.0)
    names.release.set()
    assert await asyncio.gather(*runs) == [("10.0.0.7",)] * 5
    assert names.calls == ["web.test"]


async def test_a_lookup_its_runs_gave_up_on_holds_one_thread_and_later_runs_fail_fast(
    names: Names, resolver: tuple[Resolver, Ticks]
) -> None:
    lookups, _ = resolver
    names.stalled.add("dead.test")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(lookups.addresses("dead.test", 443), 0.05)
    for _ in range(3):
        with pytest.raises(Unresolved) as pending:
            await lookups.addresses("dead.test", 443)
        assert pending.value.reason == PENDING
    assert names.calls == ["dead.test"], "no second thread for the same name"
    names.answers["live.test"] = ["10.0.0.8"]
    assert await lookups.addresses("live.test", 443) == ("10.0.0.8",), "the other thread"


async def test_a_queued_lookup_its_runs_gave_up_on_is_dropped(
    names: Names, resolver: tuple[Resolver, Ticks]
) -> None:
    lookups, _ = resolver
    names.stalled.update({"dead-1.test", "dead-2.test", "dead-3.test"})
    for name in ("dead-1.test", "dead-2.test", "dead-3.test"):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(lookups.addresses(name, 443), 0.05)
    assert sorted(names.calls) == ["dead-1.test", "dead-2.test"], "two threads, both held"
    names.release.set()
    names.stalled.clear()
    names.answers["dead-3.test"] = ["10.0.0.3"]
    await eventually(_failed(lookups, "dead-1.test", NOT_RESOLVED), "the threads are free")
    assert await lookups.addresses("dead-3.test", 443) == ("10.0.0.3",)
    assert names.calls.count("dead-3.test") == 1, "the dropped one never ran"


def tcp(name: str, host: str, port: int) -> Check:
    return Check(name, CheckKind.TCP, TcpSettings(host, port), timeout=0.5, interval=10.0)


async def test_names_that_never_resolve_do_not_make_checks_of_other_names_time_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The review's case: checks of names whose name server stalls, at once, then checks of a
    healthy name. The loop's default executor is kept small (as on a small machine): a lookup
    there would wait behind the stalled ones until the check timed out."""
    tag = uuid.uuid4().hex[:8]
    released = threading.Event()
    real = socket.getaddrinfo

    def system(host: str, *args: object, **options: object) -> object:
        if str(host).startswith(f"dead-{tag}"):
            released.wait(10.0)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        if host == f"good-{tag}.test":
            host = "127.0.0.1"
        return real(host, *args, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", system)
    loop = asyncio.get_running_loop()
    small = ThreadPoolExecutor(4)
    loop.set_default_executor(small)
    server = await asyncio.start_server(lambda reader, writer: writer.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    runner = CheckRunner(SYSTEM_CLOCK)
    try:
        dead = [tcp(f"dead{i}", f"dead-{tag}-{i}.test", port) for i in range(6)]
        first = await asyncio.gather(*(runner.run(check) for check in dead))
        again = await asyncio.gather(*(runner.run(check) for check in dead))
        async with HttpTarget({"/": Reply(200, b"ok")}) as target:
            url = f"http://good-{tag}.test:{target.port}/"
            page = Check("page", CheckKind.HTTP, HttpSettings(url), timeout=0.5, interval=10.0)
            good: tuple[Outcome, Outcome] = await asyncio.gather(
                runner.run(tcp("good", f"good-{tag}.test", port)), runner.run(page)
            )
            served = target.requests
    finally:
        released.set()
        await runner.aclose()
        server.close()
        small.shutdown(wait=False)
    assert {(o.status, o.error) for o in first} == {(Status.UNREACHABLE, "timed out after 0.5 s")}
    assert [(o.status, o.error) for o in good] == [(Status.HEALTHY, None)] * 2
    assert {(o.status, o.error) for o in again} == {(Status.UNREACHABLE, PENDING)}
    assert served[0].headers["host"] == f"good-{tag}.test:{target.port}", "the name, not the IP"


def _answer_is(lookups: Resolver, name: str, address: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await lookups.addresses(name, 443) == (address,)

    return check


def _failed(lookups: Resolver, name: str, reason: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            await lookups.addresses(name, 443)
        except Unresolved as failure:
            return failure.reason == reason
        return False

    return check
