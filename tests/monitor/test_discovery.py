"""Discovery: static replicas as written; ``dns:`` replicas from a real DNS server's answers, which
change between lookups; a failing lookup is a DiscoveryError; a hostile answer is bounded."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import AsyncIterator

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from monitor.config import Target
from monitor.discovery import MAX_REPLICAS, Discovery, DiscoveryError, Replica
from tests.support.dns_server import DNSServer


@pytest.fixture
async def server() -> AsyncIterator[DNSServer]:
    server = DNSServer()
    await server.start()
    yield server
    server.stop()


def target(*replicas: str, url: str = "http://api.example") -> Target:
    return Target(name="questcity-api", url=url, interval=10, timeout=5, replicas=replicas)


def discovery(server: DNSServer, timeout: float = 2.0) -> Discovery:
    return Discovery([server.address], timeout=timeout)


async def test_without_replicas_the_target_is_one_replica_at_its_url() -> None:
    assert await Discovery().replicas(target(url="http://127.0.0.1:8000")) == [
        Replica("127.0.0.1:8000", "http://127.0.0.1:8000")
    ]


async def test_static_replicas_are_as_written_sorted_by_key() -> None:
    found = await Discovery().replicas(
        target("http://10.0.0.6:8000", "https://[::1]:8443/api", "http://10.0.0.5")
    )
    assert found == [
        Replica("10.0.0.5:80", "http://10.0.0.5"),
        Replica("10.0.0.6:8000", "http://10.0.0.6:8000"),
        Replica("[::1]:8443", "https://[::1]:8443/api"),
    ]


async def test_dns_replicas_are_every_address_with_the_targets_scheme(server: DNSServer) -> None:
    server.records = {"api.test.": ["10.0.0.6", "10.0.0.5", "fd00::7"]}
    found = await discovery(server).replicas(
        target("dns:api.test:8000", url="https://api.example.org")
    )
    assert found == [
        Replica("10.0.0.5:8000", "https://10.0.0.5:8000"),
        Replica("10.0.0.6:8000", "https://10.0.0.6:8000"),
        Replica("[fd00::7]:8000", "https://[fd00::7]:8000"),
    ]
    assert sorted(server.questions) == [("api.test.", "A"), ("api.test.", "AAAA")]


async def test_each_lookup_sees_the_answer_of_now(server: DNSServer) -> None:
    finder = discovery(server)
    server.records = {"api.test.": ["10.0.0.5", "10.0.0.6"]}
    first = await finder.replicas(target("dns:api.test:8000"))
    server.records = {"api.test.": ["10.0.0.6", "10.0.0.7"]}  # .5 gone, .7 added
    second = await finder.replicas(target("dns:api.test:8000"))
    assert [r.key for r in first] == ["10.0.0.5:8000", "10.0.0.6:8000"]
    assert [r.key for r in second] == ["10.0.0.6:8000", "10.0.0.7:8000"]


async def test_static_and_dns_entries_combine_without_duplicates(server: DNSServer) -> None:
    server.records = {"api.test.": ["10.0.0.5", "10.0.0.6"]}
    found = await discovery(server).replicas(
        target("http://10.0.0.5:8000/", "dns:api.test:8000", "http://10.0.0.9:8000")
    )
    assert [r.key for r in found] == ["10.0.0.5:8000", "10.0.0.6:8000", "10.0.0.9:8000"]


async def test_no_such_name_or_no_address_is_no_replicas(server: DNSServer) -> None:
    server.records = {"empty.test.": []}
    finder = discovery(server)
    assert await finder.replicas(target("dns:missing.test:8000")) == []
    assert await finder.replicas(target("dns:empty.test:8000")) == []


@pytest.mark.parametrize("mode", ["servfail", "silent"])
async def test_a_failing_server_is_a_discovery_error(server: DNSServer, mode: str) -> None:
    server.records = {"api.test.": ["10.0.0.5"]}
    server.mode = mode  # type: ignore[assignment]
    with pytest.raises(DiscoveryError) as raised:
        await discovery(server, timeout=0.3).replicas(target("dns:api.test:8000"))
    message = str(raised.value)
    assert "api.test" in message and "Traceback" not in message
    assert ("timed out" in message) if mode == "silent" else ("no server answered" in message)


async def test_a_server_that_is_gone_is_a_discovery_error(server: DNSServer) -> None:
    server.records = {"api.test.": ["10.0.0.5"]}
    finder = discovery(server, timeout=0.3)
    assert len(await finder.replicas(target("dns:api.test:8000"))) == 1
    server.stop()
    with pytest.raises(DiscoveryError):
        await finder.replicas(target("dns:api.test:8000"))


async def test_the_lookup_takes_at_most_half_the_targets_timeout(server: DNSServer) -> None:
    # The lookup and the probes share the target's timeout: the probes need the other half.
    server.mode = "silent"
    quick = Target(name="t", url="http://x", interval=1, timeout=0.6, replicas=("dns:a.test:1",))
    started = time.monotonic()
    with pytest.raises(DiscoveryError):
        await discovery(server, timeout=30).replicas(quick)
    assert time.monotonic() - started < 0.55


class QuietOnAAAA(DNSServer):
    """Answers A questions; AAAA ones it answers SERVFAIL (``"servfail"``) or not at all."""

    def __init__(self, aaaa: str) -> None:
        super().__init__()
        self.aaaa = aaaa

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        asked = dns.message.from_wire(data).question[0].rdtype
        if asked == dns.rdatatype.AAAA and self.aaaa == "silent":
            return
        if asked == dns.rdatatype.AAAA:
            response = dns.message.make_response(dns.message.from_wire(data))
            response.set_rcode(dns.rcode.SERVFAIL)
            assert self._transport is not None
            self._transport.sendto(response.to_wire(), addr)
            return
        super().datagram_received(data, addr)


@pytest.mark.parametrize("aaaa", ["servfail", "silent"])
async def test_a_failed_aaaa_lookup_keeps_the_a_answer(aaaa: str) -> None:
    server = QuietOnAAAA(aaaa)
    server.records = {"api.test.": ["10.0.0.5", "10.0.0.6"]}
    await server.start()
    try:
        found = await discovery(server, timeout=0.3).replicas(target("dns:api.test:8000"))
        assert [r.key for r in found] == ["10.0.0.5:8000", "10.0.0.6:8000"]
        # The A family answering nothing while AAAA fails is no answer at all, not "no
        # replicas": the daemon keeps the set it knew.
        server.records = {"api.test.": []}
        with pytest.raises(DiscoveryError, match=r"\(AAAA\)"):
            await discovery(server, timeout=0.3).replicas(target("dns:api.test:8000"))
    finally:
        server.stop()


async def test_a_hostile_answer_is_capped_sorted_and_only_addresses(server: DNSServer) -> None:
    addresses = [str(ipaddress.IPv4Address(0x0A000000 + n)) for n in range(1000)]
    server.records = {"api.test.": addresses}

    def smuggle(response: dns.message.Message) -> None:
        # Records a hostile server adds beside the answer: another name's address, a TXT at
        # the asked name, an additional-section address. None of them is a replica.
        other = dns.name.from_text("evil.test.")
        asked = response.question[0].name
        response.answer.append(
            dns.rrset.from_text(other, 5, dns.rdataclass.IN, dns.rdatatype.A, "6.6.6.6")
        )
        response.answer.append(
            dns.rrset.from_text(asked, 5, dns.rdataclass.IN, dns.rdatatype.TXT, '"[red]x"')
        )
        response.additional.append(
            dns.rrset.from_text(asked, 5, dns.rdataclass.IN, dns.rdatatype.A, "7.7.7.7")
        )

    server.extra = smuggle
    found = await discovery(server).replicas(target("dns:api.test:8000"))
    assert len(found) == MAX_REPLICAS
    keys = [r.key for r in found]
    assert keys == sorted(f"{a}:8000" for a in addresses)[:MAX_REPLICAS]
    assert "6.6.6.6:8000" not in keys and "7.7.7.7:8000" not in keys
