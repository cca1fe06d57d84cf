"""The :class:`~monitor.checks.run.CheckRunner`: one overall deadline per run on the runner's
clock, a fault in a kind's code said as ``unknown`` (and logged once, by type), the shared HTTP
clients; and the judging every kind shares (:func:`~monitor.checks.run.judged`,
:func:`~monitor.checks.run.unreached`, :func:`~monitor.checks.run.failure_of`)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from monitor.checks.conditions import Observation, parse_condition
from monitor.checks.run import CheckRunner, failure_of, judged, names, unreached
from monitor.checks.spec import Check, CheckKind, HttpSettings, Outcome, TcpSettings
from monitor.checks.trust import Unreadable
from monitor.store.models import Status
from shared.resilience import SYSTEM_CLOCK
from shared.resilience.testing import FakeClock, settle
from tests.support.polling import eventually
from tests.support.ports import free_port
from tests.support.tls_server import self_signed, validity


def http_check(*conditions: str, timeout: float = 5.0) -> Check:
    return Check(
        name="front-door",
        kind=CheckKind.HTTP,
        settings=HttpSettings("https://ops:pw@questcity.test/?token=x"),
        conditions=tuple(parse_condition(text, CheckKind.HTTP) for text in conditions),
        timeout=timeout,
    )


class Hang(httpx.AsyncByteStream):
    """An answer whose body never comes; says whether it was let go."""

    def __init__(self) -> None:
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        await asyncio.Event().wait()
        yield b""

    async def aclose(self) -> None:
        self.closed = True


async def test_a_run_ends_at_the_checks_timeout_on_the_runners_clock() -> None:
    clock = FakeClock()
    body = Hang()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=body))
    runner = CheckRunner(clock, transport=transport)
    try:
        running = asyncio.create_task(runner.run(http_check(timeout=5.0)))
        await clock.advance(4.9)
        await settle()
        assert not running.done(), "the run ended before its timeout"
        await clock.advance(0.1)
        await settle()
        assert running.done(), "the run outlived its timeout"
        outcome = running.result()
    finally:
        await runner.aclose()
    assert (outcome.status, outcome.error) == (Status.UNREACHABLE, "timed out after 5 s")
    assert outcome.latency_ms == pytest.approx(5000.0)
    assert body.closed, "the answer is let go when the deadline cuts it"


async def test_a_timeout_of_a_check_watching_a_closed_port_is_judged_by_its_conditions() -> None:
    """A filtered port times out rather than refuses: ``[CONNECTED] == false`` holds on it."""
    clock = FakeClock()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=Hang()))
    runner = CheckRunner(clock, transport=transport)
    try:
        running = asyncio.create_task(runner.run(http_check("[CONNECTED] == false", timeout=2)))
        await clock.advance(2.0)
        await settle()
        outcome = running.result()
    finally:
        await runner.aclose()
    assert (outcome.status, outcome.error) == (Status.HEALTHY, None)


async def test_a_tcp_read_stops_on_the_runners_clock_before_its_deadline() -> None:
    """``expect`` not seen is judged at 90 % of the timeout (the runner's clock), so a silent
    server is an unhealthy answer, not a timeout."""
    clock = FakeClock()
    accepted = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    runner = CheckRunner(clock)
    check = Check("redis", CheckKind.TCP, TcpSettings("127.0.0.1", port, expect="+PONG"))
    try:
        running = asyncio.create_task(runner.run(check))
        await asyncio.wait_for(accepted.wait(), 5.0)
        await eventually(_sleeping(clock, 2), "the run waits for the answer on the clock")
        await clock.advance(4.4)
        await settle()
        assert not running.done()
        await clock.advance(0.1)
        await eventually(_done(running), "the read stopped at 4.5 s of 5")
        outcome = running.result()
    finally:
        await runner.aclose()
        server.close()
        await server.wait_closed()
    assert (outcome.status, outcome.error) == (
        Status.UNHEALTHY,
        'expect "+PONG" not seen: got nothing',
    )


async def test_a_fault_in_a_kind_is_unknown_and_logged_once_by_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = CheckRunner(FakeClock())
    # A tcp check with http settings: the kind's own assertion fails (a bug of ours).
    broken = Check("broken", CheckKind.TCP, HttpSettings("http://ops:pw@x.test/"))
    try:
        with caplog.at_level(logging.DEBUG, logger="monitor.checks"):
            first = await runner.run(broken)
            second = await runner.run(broken)
    finally:
        await runner.aclose()
    expected = Outcome(
        Status.UNKNOWN, None, error="the monitor could not run this check (AssertionError)"
    )
    assert first == second == expected
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.getMessage() for record in warnings] == [
        "check broken could not run: AssertionError (a fault in the monitor)"
    ]
    assert all(record.exc_info is None for record in caplog.records), "no traceback per run"
    assert "pw" not in caplog.text


async def test_http_clients_are_shared_per_trust_and_remade_when_the_ca_file_changes(
    tmp_path: Path,
) -> None:
    runner = CheckRunner(FakeClock())
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(self_signed(("ca.test",), *validity(30))[0])
    plain = runner.client(ca_file=None)
    assert runner.client(ca_file=None) is plain
    private = runner.client(ca_file=str(ca_file))
    assert private is not plain
    assert runner.client(ca_file=str(ca_file)) is private
    # A renewed private CA: trusted from the next run on, without a restart.
    ca_file.write_bytes(self_signed(("ca.test",), *validity(60))[0])
    os.utime(ca_file, ns=(ca_file.stat().st_mtime_ns + 1_000_000_000,) * 2)
    renewed = runner.client(ca_file=str(ca_file))
    assert renewed is not private
    assert runner.client(ca_file=str(ca_file)) is renewed
    with pytest.raises(Unreadable):
        runner.client(ca_file=str(tmp_path / "missing.pem"))
    await runner.aclose()
    assert plain.is_closed and private.is_closed and renewed.is_closed
    closed = await runner.run(http_check())
    assert closed.status is Status.UNKNOWN, "a closed runner makes no new clients"


def test_judged_says_the_kinds_own_failure_first_and_keeps_a_warning_only_when_healthy() -> None:
    check = Check(
        "mx",
        CheckKind.TCP,
        TcpSettings("mail.test", 25, expect="220"),
        conditions=(parse_condition("[RESPONSE_TIME] < 100", CheckKind.TCP),),
    )
    slow = Observation(connected=True, response_ms=250.0, body="")
    both = judged(check, slow, latency_ms=250.0, failure="expect failed", warning="soon")
    assert both.status is Status.UNHEALTHY
    assert both.error is not None and both.error.startswith("expect failed; [RESPONSE_TIME] < 100")
    assert both.warning is None
    fast = Observation(connected=True, response_ms=20.0, body="220")
    fine = judged(check, fast, latency_ms=20.0, warning="certificate expires in 20 days")
    assert (fine.status, fine.error, fine.warning) == (
        Status.HEALTHY,
        None,
        "certificate expires in 20 days",
    )


def test_unreached_is_the_error_unless_conditions_read_connected() -> None:
    plain = Check("db", CheckKind.TCP, TcpSettings("db.test", 5432))
    assert unreached(plain, "connection refused", latency_ms=3.0) == Outcome(
        Status.UNREACHABLE, 3.0, error="connection refused"
    )
    watching = Check(
        "closed",
        CheckKind.TCP,
        TcpSettings("db.test", 5432),
        conditions=(parse_condition("[CONNECTED] == true", CheckKind.TCP),),
    )
    judged_down = unreached(watching, "connection refused", latency_ms=3.0)
    assert judged_down.status is Status.UNREACHABLE, "why it could not connect is kept"
    assert judged_down.error == "connection refused; [CONNECTED] == true failed: got false"
    assert [result.ok for result in judged_down.results] == [False]


def test_names_tells_whether_a_written_condition_reads_a_placeholder() -> None:
    """``[CONNECTED]``: judged even when it cannot connect; ``[BODY]``: the answer is read."""
    assert names(refused_check(CheckKind.TCP, 1, "[CONNECTED] == false"), "CONNECTED")
    assert not names(refused_check(CheckKind.TCP, 1, "[RESPONSE_TIME] < 100"), "CONNECTED")
    assert not names(refused_check(CheckKind.TCP, 1), "CONNECTED")
    assert names(refused_check(CheckKind.HTTP, 1, "[BODY].status == up"), "BODY")


def refused_check(kind: CheckKind, port: int, *conditions: str) -> Check:
    settings = (
        TcpSettings("127.0.0.1", port)
        if kind is CheckKind.TCP
        else HttpSettings(f"http://127.0.0.1:{port}/health")
    )
    return Check(
        f"closed-{kind.value}",
        kind,
        settings,
        conditions=tuple(parse_condition(text, kind) for text in conditions),
    )


@pytest.mark.parametrize(
    ("kind", "conditions", "error"),
    [
        (
            CheckKind.TCP,
            ("[CONNECTED] == true",),
            "connection refused; [CONNECTED] == true failed: got false",
        ),
        (
            CheckKind.HTTP,
            ("[CONNECTED] == true", "[STATUS] == 200"),
            "connection refused; [CONNECTED] == true failed: got false; "
            "[STATUS] == 200 failed: no value",
        ),
    ],
)
async def test_connected_true_on_a_refused_port_stays_unreachable_and_says_refused(
    kind: CheckKind, conditions: tuple[str, ...], error: str
) -> None:
    """Gatus's ``[CONNECTED] == true`` must not turn refused into unhealthy nor hide why."""
    runner = CheckRunner(SYSTEM_CLOCK)
    try:
        outcome = await runner.run(refused_check(kind, free_port(), *conditions))
    finally:
        await runner.aclose()
    assert (outcome.status, outcome.error) == (Status.UNREACHABLE, error)


@pytest.mark.parametrize("kind", [CheckKind.TCP, CheckKind.HTTP])
async def test_connected_false_on_a_refused_port_is_healthy(kind: CheckKind) -> None:
    runner = CheckRunner(SYSTEM_CLOCK)
    try:
        outcome = await runner.run(refused_check(kind, free_port(), "[CONNECTED] == false"))
    finally:
        await runner.aclose()
    assert (outcome.status, outcome.error) == (Status.HEALTHY, None)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "connection refused"),
        (
            OSError("All connection attempts failed"),
            "connection refused",
        ),
        (socket.gaierror(-2, "Name or service not known"), "name does not resolve"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "no route to host"),
        (OSError(errno.ETIMEDOUT, "Connection timed out"), "timed out after 5 s"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), "connection lost"),
        (OSError("something else"), "connection failed"),
    ],
)
def test_failure_of_reads_the_chain_never_its_text(error: OSError, expected: str) -> None:
    if str(error) == "All connection attempts failed":
        # anyio: OSError from a group of each address's refusal (::1 and 127.0.0.1).
        group = ExceptionGroup(
            "multiple connection attempts failed",
            [ConnectionRefusedError(111, "::1"), ConnectionRefusedError(111, "127.0.0.1")],
        )
        error.__cause__ = group
    wrapped = httpx.ConnectError("http://ops:pw@x.test/ failed")
    wrapped.__cause__ = Exception(error)  # httpcore carries the original as its argument
    assert failure_of(wrapped, 5.0) == (Status.UNREACHABLE, expected)


def test_a_certificate_refused_is_an_answer_named_by_ssls_fixed_message() -> None:
    refused = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] ... (x.test)")
    refused.verify_message = "certificate has expired"
    assert failure_of(httpx.ConnectError("x"), 5.0)[0] is Status.UNREACHABLE
    wrapped = httpx.ConnectError("https://ops:pw@x.test/")
    wrapped.__cause__ = refused
    assert failure_of(wrapped, 5.0) == (
        Status.UNHEALTHY,
        "certificate not valid: certificate has expired",
    )


def _sleeping(clock: FakeClock, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(clock.sleeps) >= count

    return check


def _done(task: asyncio.Task[Outcome]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        await settle()
        return task.done()

    return check


def test_a_kinds_module_is_imported_when_loaded_not_when_the_runner_is_made() -> None:
    """The daemon loads its kinds at start (an import inside a run would hold the loop); a
    monitor without PostgreSQL or DNS checks never imports asyncpg or dnspython."""
    script = (
        "import sys\n"
        "from monitor.checks.run import CheckRunner\n"
        "from monitor.checks.spec import CheckKind\n"
        "from shared.resilience import SYSTEM_CLOCK\n"
        "runner = CheckRunner(SYSTEM_CLOCK)\n"
        "before = 'asyncpg' in sys.modules, 'monitor.checks.postgres' in sys.modules\n"
        "runner.load({CheckKind.POSTGRES})\n"
        "print(before, ('asyncpg' in sys.modules, 'monitor.checks.postgres' in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split("\n")[0] == "(False, False) (True, True)"
