"""``tls`` checks against a real TLS server on 127.0.0.1 with a certificate made for the test:
days left against ``min_days`` and ``warn_days`` (on the runner's wall clock), a certificate that
has expired, is for another name or is not trusted, a port refused, a handshake that never ends."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.checks.conditions import parse_condition
from monitor.checks.run import CheckRunner
from monitor.checks.spec import Check, CheckKind, HttpSettings, Outcome, TlsSettings
from monitor.checks.trust import trust
from monitor.store.models import Status
from tests.support.clock import SkewClock
from tests.support.ports import free_port
from tests.support.tls_server import StallServer, TLSServer, self_signed, validity

DAY = 86400.0


@pytest.fixture
def clock() -> SkewClock:
    return SkewClock()


@pytest.fixture
async def runner(clock: SkewClock) -> AsyncIterator[CheckRunner]:
    runner = CheckRunner(clock)
    yield runner
    await runner.aclose()


def tls_check(
    port: int,
    *,
    ca_file: Path | None,
    host: str = "127.0.0.1",
    server_name: str | None = None,
    min_days: int = 14,
    warn_days: int = 30,
    timeout: float = 2.0,
    conditions: tuple[str, ...] = (),
) -> Check:
    return Check(
        name="front-door-cert",
        kind=CheckKind.TLS,
        settings=TlsSettings(
            host=host,
            port=port,
            min_days=min_days,
            warn_days=warn_days,
            ca_file=None if ca_file is None else str(ca_file),
            server_name=server_name,
        ),
        conditions=tuple(parse_condition(text, CheckKind.TLS) for text in conditions),
        timeout=timeout,
    )


async def run_against(runner: CheckRunner, server: TLSServer, **settings: object) -> Outcome:
    check = tls_check(server.port, ca_file=server.ca_file, **settings)  # type: ignore[arg-type]
    return await runner.run(check)


async def test_a_valid_certificate_far_from_expiry_is_healthy(
    runner: CheckRunner, tmp_path: Path
) -> None:
    async with TLSServer(tmp_path, days=90.5) as server:
        outcome = await run_against(runner, server)
    assert outcome.status is Status.HEALTHY
    assert outcome.error is None and outcome.warning is None
    assert outcome.latency_ms is not None and outcome.latency_ms >= 0
    assert server.handshakes == 1


async def test_the_name_checked_may_differ_from_the_host_connected_to(
    runner: CheckRunner, tmp_path: Path
) -> None:
    async with TLSServer(tmp_path, names=("front.questcity.test",)) as server:
        outcome = await run_against(runner, server, server_name="front.questcity.test")
    assert outcome.status is Status.HEALTHY, outcome.error


async def test_fewer_days_than_warn_days_is_healthy_with_a_warning(
    runner: CheckRunner, tmp_path: Path
) -> None:
    async with TLSServer(tmp_path, days=20.5) as server:
        outcome = await run_against(runner, server)
    assert outcome.status is Status.HEALTHY
    assert outcome.error is None
    assert outcome.warning == "certificate expires in 20 days (warn_days 30)"
    record = outcome.record(tls_check(server.port, ca_file=None), at=0.0)
    assert record.error == outcome.warning  # what certificate_expiring fires on


async def test_fewer_days_than_min_days_is_unhealthy(runner: CheckRunner, tmp_path: Path) -> None:
    async with TLSServer(tmp_path, days=3.5) as server:
        outcome = await run_against(runner, server)
    assert outcome.status is Status.UNHEALTHY
    assert outcome.error == "certificate expires in 3 days (min_days 14)"
    assert outcome.warning is None


async def test_one_day_and_less_than_a_day_are_said_so(runner: CheckRunner, tmp_path: Path) -> None:
    async with TLSServer(tmp_path, days=1.5) as server:
        one = await run_against(runner, server)
    async with TLSServer(tmp_path, days=0.5) as server:
        less = await run_against(runner, server)
    assert one.error == "certificate expires in 1 day (min_days 14)"
    assert less.error == "certificate expires in less than a day (min_days 14)"


async def test_days_left_are_counted_on_the_runners_wall_clock(
    runner: CheckRunner, clock: SkewClock, tmp_path: Path
) -> None:
    async with TLSServer(tmp_path, days=40.5) as server:
        before = await run_against(runner, server)
        clock.jump(30 * DAY)
        after = await run_against(runner, server)
        clock.jump(20 * DAY)
        gone = await run_against(runner, server)
    assert (before.status, before.warning) == (Status.HEALTHY, None)
    assert after.status is Status.UNHEALTHY
    assert after.error == "certificate expires in 10 days (min_days 14)"
    assert gone.status is Status.UNHEALTHY
    assert gone.error == "certificate has expired"


async def test_an_expired_certificate_is_not_valid(runner: CheckRunner, tmp_path: Path) -> None:
    async with TLSServer(tmp_path, days=-2) as server:
        outcome = await run_against(runner, server)
    assert outcome.status is Status.UNHEALTHY
    assert outcome.error == "certificate not valid: certificate has expired"


async def test_a_certificate_for_another_name_is_not_valid(
    runner: CheckRunner, tmp_path: Path
) -> None:
    async with TLSServer(tmp_path, names=("other.questcity.test",)) as server:
        by_name = await run_against(runner, server, server_name="front.questcity.test")
        by_address = await run_against(runner, server)
    assert by_name.status is Status.UNHEALTHY
    assert by_name.error is not None
    assert by_name.error.startswith(
        "certificate not valid: Hostname mismatch, certificate is not valid for 'front."
    )
    assert by_address.status is Status.UNHEALTHY
    assert by_address.error is not None
    assert by_address.error.startswith("certificate not valid: IP address mismatch")


async def test_a_certificate_no_trusted_ca_signed_is_not_valid(
    runner: CheckRunner, tmp_path: Path
) -> None:
    async with TLSServer(tmp_path) as server:
        outcome = await runner.run(tls_check(server.port, ca_file=None))
    assert outcome.status is Status.UNHEALTHY
    assert outcome.error is not None
    assert outcome.error.replace("-", " ") == "certificate not valid: self signed certificate"


async def test_a_refusal_is_said_as_an_http_check_of_the_same_certificate_says_it(
    runner: CheckRunner, tmp_path: Path
) -> None:
    """One wording and one cut for both kinds; the cut leaves the name it was refused for."""
    async with TLSServer(tmp_path, names=("other.questcity.test",)) as server:
        by_tls = await run_against(runner, server)
        page = Check(
            "page",
            CheckKind.HTTP,
            HttpSettings(f"https://127.0.0.1:{server.port}/", ca_file=str(server.ca_file)),
        )
        by_http = await runner.run(page)
    assert by_tls.error is not None
    assert by_tls.error.startswith("certificate not valid: IP address mismatch")
    assert by_tls.error.endswith("'127.0.0.1'.")
    assert (by_tls.status, by_tls.error) == (by_http.status, by_http.error)


async def test_a_ca_file_that_cannot_be_read_is_unknown(
    runner: CheckRunner, tmp_path: Path
) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate")
    missing = await runner.run(tls_check(443, ca_file=tmp_path / "missing.pem"))
    junk = await runner.run(tls_check(443, ca_file=tmp_path / "junk.pem"))
    for outcome in (missing, junk):
        assert outcome.status is Status.UNKNOWN
        assert outcome.error == "ca_file cannot be read as PEM certificates"


async def test_a_refused_port_is_unreachable(runner: CheckRunner, tmp_path: Path) -> None:
    outcome = await runner.run(tls_check(free_port(), ca_file=None))
    assert outcome.status is Status.UNREACHABLE
    assert outcome.error == "connection refused"


async def test_a_handshake_that_never_ends_times_out(runner: CheckRunner) -> None:
    async with StallServer() as server:
        outcome = await runner.run(tls_check(server.port, ca_file=None, timeout=0.3))
    assert server.accepted == 1
    assert outcome.status is Status.UNREACHABLE
    assert outcome.error == "timed out after 0.3 s"


async def test_a_server_that_does_not_speak_tls_fails_the_handshake(
    runner: CheckRunner, tmp_path: Path
) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 10)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        outcome = await runner.run(tls_check(port, ca_file=None))
    finally:
        server.close()
        await server.wait_closed()
    assert outcome.status is Status.UNHEALTHY
    assert outcome.error is not None and outcome.error.startswith("TLS handshake failed: ")
    assert "HTTP" not in outcome.error


async def test_a_written_condition_on_the_expiry_is_judged(
    runner: CheckRunner, tmp_path: Path
) -> None:
    async with TLSServer(tmp_path, days=40.5) as server:
        held = await run_against(runner, server, conditions=("[CERTIFICATE_EXPIRATION] > 39d",))
        failed = await run_against(
            runner, server, conditions=("[CERTIFICATE_EXPIRATION] > 60d", "[CONNECTED] == true")
        )
    assert held.status is Status.HEALTHY, held.error
    assert failed.status is Status.UNHEALTHY
    assert failed.error is not None
    assert failed.error.startswith("[CERTIFICATE_EXPIRATION] > 60d failed: got ")
    assert [r.ok for r in failed.results] == [False, True]


async def test_too_few_days_and_a_failed_condition_are_both_said(
    runner: CheckRunner, tmp_path: Path
) -> None:
    async with TLSServer(tmp_path, days=3.5) as server:
        outcome = await run_against(runner, server, conditions=("[RESPONSE_TIME] < 0",))
    assert outcome.error is not None
    assert outcome.error.startswith(
        "certificate expires in 3 days (min_days 14); [RESPONSE_TIME] < 0 failed: got "
    )


async def test_a_port_that_must_stay_closed_is_healthy_when_refused(
    runner: CheckRunner, tmp_path: Path
) -> None:
    closed = await runner.run(
        tls_check(free_port(), ca_file=None, conditions=("[CONNECTED] == false",))
    )
    async with TLSServer(tmp_path) as server:
        opened = await run_against(runner, server, conditions=("[CONNECTED] == false",))
    assert closed.status is Status.HEALTHY, closed.error
    assert opened.status is Status.UNHEALTHY
    assert opened.error == "[CONNECTED] == false failed: got true"


async def test_a_host_name_that_does_not_resolve_is_unreachable(runner: CheckRunner) -> None:
    outcome = await runner.run(tls_check(443, ca_file=None, host="no-such-host.invalid"))
    assert outcome.status is Status.UNREACHABLE
    assert outcome.error == "name does not resolve"


async def test_a_peer_that_never_answers_the_close_does_not_hold_the_run(
    runner: CheckRunner, tmp_path: Path
) -> None:
    """A probe says no goodbye: once the expiry is read the connection is dropped, so a peer
    that never answers close_notify neither holds the run nor makes it time out."""
    cert_pem, key_pem = self_signed(("127.0.0.1",), *validity(90))
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        # Completes the handshake, then never reads (no close_notify back) and never closes.
        accepted, _ = listener.accept()
        with context.wrap_socket(accepted, server_side=True):
            done.wait(10.0)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        check = tls_check(listener.getsockname()[1], ca_file=tmp_path / "cert.pem", timeout=0.5)
        outcome = await runner.run(check)
    finally:
        done.set()
        listener.close()
    # Healthy within its 0.5 s: waiting for the peer's goodbye would have timed it out.
    assert (outcome.status, outcome.error) == (Status.HEALTHY, None)


def test_one_trust_context_per_ca_file_until_the_file_changes(tmp_path: Path) -> None:
    """What the tls kind and the http kind's clients trust: a renewed private CA is read anew,
    an unchanged one is not read again."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(self_signed(("ca.questcity.test",), *validity(30))[0])
    first = trust(str(ca_file))
    assert trust(str(ca_file)) is first
    ca_file.write_bytes(self_signed(("renewed.questcity.test",), *validity(30))[0])
    later = ca_file.stat().st_mtime_ns + 1_000_000_000
    os.utime(ca_file, ns=(later, later))
    renewed = trust(str(ca_file))
    assert renewed is not first
    assert trust(str(ca_file)) is renewed
    assert trust(None) is trust(None), "the system's CAs, read once"
    assert renewed.verify_mode is ssl.CERT_REQUIRED and renewed.check_hostname
