"""The probe's bounds on one target's answer, with ``httpx.MockTransport`` and a manual clock: the
overall deadline runs on the probe's clock, a declared oversize answer is refused unread, and
every field kept from an answer is within what the store and the screens hold."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from monitor import answer
from monitor.config import Target
from monitor.probe import MAX_ANSWER_BYTES, probe, probe_replica
from monitor.store import Instance, Status
from shared.resilience.testing import FakeClock, settle

TARGET = Target("api", "http://api.test", interval=10.0, timeout=4.0)


class Drip(httpx.AsyncByteStream):
    """A body that sends a byte whenever the test says so, and never ends."""

    def __init__(self) -> None:
        self.more = asyncio.Event()
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            await self.more.wait()
            self.more.clear()
            yield b" "

    async def aclose(self) -> None:
        self.closed = True


class Unreadable(httpx.AsyncByteStream):
    def __init__(self) -> None:
        self.read = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.read = True
        yield b"{}"


async def test_a_slow_drip_is_a_timeout_at_the_overall_deadline_of_the_probes_clock() -> None:
    """httpx's timeout is per read: a byte every 2 s with a timeout of 4 never tripped it, and
    the check never ended (no record, no incident). The deadline is the target's timeout over the
    whole probe, on the clock the probe is given."""
    clock = FakeClock()
    drip = Drip()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=drip))
    async with httpx.AsyncClient(transport=transport) as client:
        checking = asyncio.create_task(probe(client, TARGET, token=None, clock=clock))
        for _ in range(3):  # 3 s of drip, each byte well within any per-read timeout
            drip.more.set()
            await clock.advance(1.0)
        assert not checking.done()
        drip.more.set()
        await clock.advance(1.0)  # 4 s: the target's timeout
        await settle()
        assert checking.done(), "the probe outlived its deadline"
        record = checking.result()

    assert (record.status, record.error) == (Status.UNREACHABLE, "timeout")
    assert record.latency_ms == pytest.approx(4000.0)
    assert drip.closed, "the connection is let go"


async def test_an_answer_declared_larger_than_the_cap_is_refused_unread() -> None:
    headers = {"Content-Length": str(MAX_ANSWER_BYTES + 1)}
    body = Unreadable()
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers=headers, stream=body)
    )
    async with httpx.AsyncClient(transport=transport) as client:
        record = await probe(client, TARGET, token=None, clock=FakeClock())

    assert (record.status, record.error, record.http_status) == (
        Status.UNREACHABLE,
        "answer too large",
        200,
    )
    assert not body.read, "the body of an oversize answer was read"


async def test_an_answer_past_the_cap_without_a_length_is_cut_off() -> None:
    body = b'{"status": "healthy", "pad": "' + b" " * MAX_ANSWER_BYTES + b'"}'
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    async with httpx.AsyncClient(transport=transport) as client:
        record = await probe(client, TARGET, token=None, clock=FakeClock())

    assert (record.status, record.error) == (Status.UNREACHABLE, "answer too large")


@pytest.mark.parametrize(
    "field",
    [
        {"consecutive_failures": 10**30},
        {"consecutive_failures": 2**31},
        {"consecutive_failures": -1},
        {"response_time_ms": 1e300},
        {"response_time_ms": -5.0},
        {"response_time_ms": 10**400},
        {"circuit_breaker": {"state": "x" * 21}},
        {"circuit_breaker": {"state": 7}},
    ],
)
def test_a_number_or_word_the_store_cannot_hold_fails_the_check(field: dict[str, object]) -> None:
    document = {"status": "healthy", "checks": {"database": {"status": "healthy", **field}}}
    with pytest.raises(answer.AnswerRejected, match=r"^answer out of range$"):
        answer.services(document)


@pytest.mark.parametrize(
    "body",
    [
        b'{"status": "healthy", "x": NaN}',
        b'{"status": "healthy", "x": Infinity}',
        b'{"status": "healthy", "n": ' + b"9" * 5000 + b"}",
        b"[" * 100_000,
        b'{"status": "\xff"}',
    ],
)
def test_json_python_would_choke_on_or_store_as_nan_is_invalid(body: bytes) -> None:
    with pytest.raises(answer.AnswerRejected, match=r"^invalid JSON$"):
        answer.parse(body)


@pytest.mark.parametrize(
    "name", ["[/]", "[@click=app.quit]", "db\x1b[31m", "a b", "x" * 65, "", "-lead"]
)
def test_a_service_name_that_is_not_a_plain_word_fails_the_check(name: str) -> None:
    with pytest.raises(answer.AnswerRejected, match=r"^service name not allowed$"):
        answer.services({"status": "healthy", "checks": {name: {"status": "healthy"}}})


def test_more_services_than_the_cap_fail_the_check() -> None:
    checks = {f"s{n}": {"status": "healthy"} for n in range(answer.MAX_SERVICES + 1)}
    with pytest.raises(answer.AnswerRejected, match=r"^too many services"):
        answer.services({"status": "healthy", "checks": checks})
    kept = answer.services({"status": "healthy", "checks": dict(list(checks.items())[:64])})
    assert len(kept) == answer.MAX_SERVICES


def test_details_are_trimmed_not_refused() -> None:
    deep: object = "bottom"
    for _ in range(50):
        deep = {"d": deep}
    (sample,) = answer.services(
        {
            "status": "healthy",
            "checks": {
                "database": {
                    "status": "degraded",  # a healthy service's last error is dropped (#14)
                    "last_error": "refused\x1b[2J\n\u202e" + "e" * 10_000,
                    "details": {"deep": deep, "huge": 10**30, **{f"k{n}": n for n in range(99)}},
                }
            },
        }
    )

    error = sample.details["last_error"]
    assert isinstance(error, str)
    assert error.startswith("refused[2J") and len(error) == answer.MAX_TEXT
    details = sample.details["details"]
    assert isinstance(details, dict)
    assert len(details) == answer.MAX_DETAIL_KEYS
    assert details["huge"] is None
    assert details["deep"] == {"d": {"d": None}}


async def test_a_compressed_answer_is_refused_rather_than_inflated() -> None:
    """A few KiB of gzip inflate to gigabytes in one chunk, past any cap counted afterwards; the
    probe asks for ``identity`` and refuses anything else."""
    seen: list[str] = []

    def gzipped(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Accept-Encoding"])
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=b"\x1f\x8b")

    async with httpx.AsyncClient(transport=httpx.MockTransport(gzipped)) as client:
        record = await probe(client, TARGET, token=None, clock=FakeClock())

    assert seen == ["identity"]
    assert (record.status, record.error) == (Status.UNREACHABLE, "answer compressed")


async def test_a_replica_is_probed_at_its_own_base_url_with_the_instance_it_named() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        document = {
            "status": "healthy",
            "checks": {},
            "instance": {"id": "api-7f9c-1234", "started_at": "2027-01-15T08:00:00Z"},
        }
        return httpx.Response(200, json=document)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
        record = await probe(client, TARGET, token="t", base_url="http://10.0.0.5:8000")
        checked = await probe_replica(client, TARGET, "http://[fd00::7]:8000", token="t")
    assert seen == [
        "http://10.0.0.5:8000/api/v1/health/detailed",
        "http://[fd00::7]:8000/api/v1/health/detailed",
    ]
    assert (record.target, record.status) == ("api", Status.HEALTHY)
    assert checked.replica == "[fd00::7]:8000"
    assert checked.record.target == "api"
    assert checked.instance == Instance("api-7f9c-1234", 1_800_000_000.0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"id": "api-1", "started_at": 1_800_000_000.5}, Instance("api-1", 1_800_000_000.5)),
        (
            {"id": "api-1", "started_at": "2027-01-15T08:00:00+00:00"},
            Instance("api-1", 1_800_000_000.0),
        ),
        ({"id": "api-1", "started_at": "2027-01-15T08:00:00"}, Instance("api-1", 1_800_000_000.0)),
        ({"id": "api-1", "started_at": "yesterday"}, Instance("api-1", None)),
        ({"id": "api-1", "started_at": "9" * 100_000}, Instance("api-1", None)),
        ({"id": "api-1", "started_at": float("nan")}, Instance("api-1", None)),
        ({"id": "api-1", "started_at": 10**400}, Instance("api-1", None)),
        ({"id": "api-1", "started_at": -5}, Instance("api-1", None)),
        ({"id": "api-1", "started_at": True}, Instance("api-1", None)),
        ({"id": "api-1"}, Instance("api-1", None)),
        ({"id": "x" * 100}, Instance("x" * 100, None)),
        ({"id": "x" * 101, "started_at": 1.0}, None),
        ({"id": "api\x1b[31m", "started_at": 1.0}, None),
        ({"id": "api\u202e1", "started_at": 1.0}, None),
        ({"id": "api\n1"}, None),
        ({"id": ""}, None),
        ({"id": "   "}, None),
        ({"id": 5}, None),
        ("api-1", None),
        (None, None),
    ],
)
def test_the_instance_is_read_bounded_and_hostile(raw: object, expected: Instance | None) -> None:
    assert answer.instance({"status": "healthy", "instance": raw}) == expected
