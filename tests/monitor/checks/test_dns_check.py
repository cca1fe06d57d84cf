"""``dns`` checks against a real DNS server on 127.0.0.1 (``tests.support.dns_server``): the
answer's records as ``[BODY]``, ``expect`` among them, NXDOMAIN and SERVFAIL and REFUSED said
plainly, a server that never answers, which servers are asked, a hostile answer bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator

import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from monitor.checks.conditions import parse_condition
from monitor.checks.run import CheckRunner
from monitor.checks.spec import Check, CheckKind, DnsSettings
from monitor.store.models import Status
from tests.support.clock import SkewClock
from tests.support.dns_server import DNSServer
from tests.support.ports import free_port


@pytest.fixture
async def server() -> AsyncIterator[DNSServer]:
    server = DNSServer()
    await server.start()
    yield server
    server.stop()


@pytest.fixture
async def runner(server: DNSServer) -> AsyncIterator[CheckRunner]:
    """A runner whose ``[dns] nameservers`` is the test's server."""
    runner = CheckRunner(SkewClock(), nameservers=(server.address,))
    yield runner
    await runner.aclose()


def dns_check(
    host: str = "api.questcity.test",
    record_type: str = "A",
    *,
    expect: tuple[str, ...] = (),
    nameservers: tuple[tuple[str, int], ...] = (),
    conditions: tuple[str, ...] = (),
    timeout: float = 2.0,
) -> Check:
    return Check(
        name="api-dns",
        kind=CheckKind.DNS,
        settings=DnsSettings(
            host=host, record_type=record_type, expect=expect, nameservers=nameservers
        ),
        conditions=tuple(parse_condition(text, CheckKind.DNS) for text in conditions),
        timeout=timeout,
    )


async def test_a_name_that_resolves_is_healthy(server: DNSServer, runner: CheckRunner) -> None:
    server.records = {"api.questcity.test.": ["10.0.0.6", "10.0.0.5"]}
    outcome = await runner.run(dns_check(expect=("10.0.0.5",)))
    assert outcome.status is Status.HEALTHY, outcome.error
    assert outcome.error is None
    assert outcome.latency_ms is not None
    assert server.questions == [("api.questcity.test.", "A")]


async def test_an_expected_record_missing_fails_with_what_was_there(
    server: DNSServer, runner: CheckRunner
) -> None:
    server.records = {"api.questcity.test.": ["10.0.0.6", "10.0.0.5"]}
    outcome = await runner.run(dns_check(expect=("10.0.0.5", "10.0.0.9")))
    assert outcome.status is Status.UNHEALTHY
    assert outcome.error == "expect 10.0.0.9 failed: got 10.0.0.5 10.0.0.6"


async def test_expect_is_compared_as_people_write_records(
    server: DNSServer, runner: CheckRunner
) -> None:
    server.records = {"api.questcity.test.": ["2001:db8::1"]}
    server.typed = {
        ("questcity.test.", "MX"): ["10 Mail.questcity.test."],
        ("questcity.test.", "TXT"): ['"v=spf1 -all"'],
    }
    six = await runner.run(dns_check(record_type="AAAA", expect=("2001:DB8:0::1",)))
    mx = await runner.run(dns_check("questcity.test", "MX", expect=("10 mail.questcity.test",)))
    txt = await runner.run(dns_check("questcity.test", "TXT", expect=("v=spf1 -all",)))
    assert [o.status for o in (six, mx, txt)] == [Status.HEALTHY] * 3, [six, mx, txt]


async def test_a_cname_is_followed_to_the_asked_type(
    server: DNSServer, runner: CheckRunner
) -> None:
    server.records = {"api.questcity.test.": ["10.0.0.5"]}
    server.typed = {("www.questcity.test.", "CNAME"): ["api.questcity.test."]}
    followed = await runner.run(dns_check("www.questcity.test", expect=("10.0.0.5",)))
    alias = await runner.run(
        dns_check("www.questcity.test", "CNAME", expect=("api.questcity.test.",))
    )
    assert followed.status is Status.HEALTHY, followed.error
    assert alias.status is Status.HEALTHY, alias.error


async def test_a_name_that_does_not_exist_is_unhealthy(
    server: DNSServer, runner: CheckRunner
) -> None:
    outcome = await runner.run(dns_check("gone.questcity.test", expect=("10.0.0.5",)))
    assert outcome.status is Status.UNHEALTHY
    assert outcome.error == "name does not resolve (NXDOMAIN)"


async def test_a_condition_on_the_code_replaces_the_implicit_noerror(
    server: DNSServer, runner: CheckRunner
) -> None:
    server.records = {"api.questcity.test.": ["10.0.0.5"]}
    check = dns_check("old.questcity.test", conditions=("[DNS_RCODE] == NXDOMAIN",))
    gone = await runner.run(check)
    server.records["old.questcity.test."] = ["10.0.0.7"]
    back = await runner.run(check)
    assert gone.status is Status.HEALTHY, gone.error
    assert back.status is Status.UNHEALTHY
    assert back.error == "[DNS_RCODE] == NXDOMAIN failed: got NOERROR"


async def test_a_written_condition_on_the_body_is_judged(
    server: DNSServer, runner: CheckRunner
) -> None:
    server.records = {"api.questcity.test.": ["10.0.0.5", "10.0.0.6", "10.0.0.7"]}
    held = await runner.run(dns_check(conditions=("[BODY] == pat(*10.0.0.6*)",)))
    failed = await runner.run(dns_check(conditions=("[BODY] == pat(*10.0.0.9*)",)))
    assert held.status is Status.HEALTHY, held.error
    assert failed.status is Status.UNHEALTHY
    assert failed.error is not None
    assert failed.error.startswith("[BODY] == pat(*10.0.0.9*) failed: got ")
    assert "10.0.0.5 10.0.0.6 10.0.0.7" in failed.error


async def test_a_known_name_without_records_of_the_type_is_an_empty_answer(
    server: DNSServer, runner: CheckRunner
) -> None:
    server.records = {"api.questcity.test.": ["10.0.0.5"]}
    plain = await runner.run(dns_check(record_type="AAAA"))
    expecting = await runner.run(dns_check(record_type="AAAA", expect=("::1",)))
    assert plain.status is Status.HEALTHY, plain.error
    assert expecting.status is Status.UNHEALTHY
    assert expecting.error == "expect ::1 failed: got nothing"


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("servfail", "name server failed (SERVFAIL)"),
        ("refused", "name server refused the query (REFUSED)"),
    ],
)
async def test_a_server_that_answers_with_an_error_is_unhealthy(
    server: DNSServer, runner: CheckRunner, mode: str, said: str
) -> None:
    server.records = {"api.questcity.test.": ["10.0.0.5"]}
    server.mode = mode  # type: ignore[assignment]
    outcome = await runner.run(dns_check())
    assert outcome.status is Status.UNHEALTHY
    assert outcome.error == said


async def test_a_server_that_never_answers_is_unreachable(
    server: DNSServer, runner: CheckRunner
) -> None:
    server.mode = "silent"
    outcome = await runner.run(dns_check(timeout=0.3))
    assert outcome.status is Status.UNREACHABLE
    assert outcome.error == "timed out after 0.3 s"


async def test_the_checks_own_name_server_comes_before_the_default(
    server: DNSServer, runner: CheckRunner
) -> None:
    other = DNSServer()
    await other.start()
    try:
        other.records = {"api.questcity.test.": ["10.0.0.8"]}
        server.records = {"api.questcity.test.": ["10.0.0.5"]}
        outcome = await runner.run(dns_check(expect=("10.0.0.8",), nameservers=(other.address,)))
    finally:
        other.stop()
    assert outcome.status is Status.HEALTHY, outcome.error
    assert server.questions == []
    assert other.questions == [("api.questcity.test.", "A")]


async def test_a_name_server_port_closed_is_unreachable(runner: CheckRunner) -> None:
    outcome = await runner.run(dns_check(nameservers=(("127.0.0.1", free_port()),), timeout=0.5))
    assert outcome.status is Status.UNREACHABLE
    assert outcome.error in ("connection refused", "timed out after 0.5 s")


async def test_an_unknown_record_type_cannot_be_run(runner: CheckRunner) -> None:
    unknown = await runner.run(dns_check(record_type="BOGUS"))
    meta = await runner.run(dns_check(record_type="AXFR"))
    assert (unknown.status, unknown.error) == (
        Status.UNKNOWN,
        "BOGUS api.questcity.test cannot be asked",
    )
    assert (meta.status, meta.error) == (Status.UNKNOWN, "AXFR api.questcity.test cannot be asked")


async def test_at_most_64_records_are_read(server: DNSServer, runner: CheckRunner) -> None:
    def add(response: dns.message.Message) -> None:
        # 300 addresses of the same width: a [BODY] of exactly 64 is 64 x 12 + 63 spaces.
        addresses = [f"10.1.{100 + i // 100}.{100 + i % 100}" for i in range(300)]
        response.answer.append(
            dns.rrset.from_text_list(
                dns.name.from_text("api.questcity.test."),
                5,
                dns.rdataclass.IN,
                dns.rdatatype.A,
                addresses,
            )
        )

    server.records = {"api.questcity.test.": []}
    server.extra = add
    outcome = await runner.run(dns_check(conditions=("len([BODY]) == 831",)))
    assert outcome.status is Status.HEALTHY, outcome.error


async def test_a_long_record_is_cut(server: DNSServer, runner: CheckRunner) -> None:
    long_txt = " ".join(f'"{c * 250}"' for c in "abcd")  # one record of four strings
    server.typed = {("questcity.test.", "TXT"): [long_txt]}
    outcome = await runner.run(
        dns_check("questcity.test", "TXT", conditions=("len([BODY]) == 255",))
    )
    assert outcome.status is Status.HEALTHY, outcome.error


async def test_a_failure_on_a_huge_answer_is_one_bounded_line(
    server: DNSServer, runner: CheckRunner
) -> None:
    server.typed = {("questcity.test.", "TXT"): [f'"{i:03d}\010{"x" * 200}"' for i in range(100)]}
    outcome = await runner.run(dns_check("questcity.test", "TXT", expect=("y" * 500,)))
    assert outcome.status is Status.UNHEALTHY
    assert outcome.error is not None
    assert outcome.error.isprintable()
    assert outcome.error.startswith("expect " + "y" * 59 + "… failed: got ")
    assert len(outcome.error) <= 200
