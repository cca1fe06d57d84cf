"""A tiny real DNS server on 127.0.0.1 for discovery tests: UDP, on the test's event loop, built
with dnspython's own wire format (``dns.message.from_wire`` / ``make_response``).

It answers A and AAAA questions from :attr:`DNSServer.records` (a dict a test changes while the
server runs: ``{"api.test.": ["10.0.0.5", "::1"]}``), NXDOMAIN for names it does not know, and
NOERROR with no records for a known name without addresses of the asked type. :attr:`typed` holds
records of any type as text (``{("mail.test.", "MX"): ["10 mx1.test."]}``); a name there is known
too, and a CNAME there is followed (a few hops) as a resolver's answer does: the CNAME, then the
target's records of the asked type. :attr:`mode` makes it misbehave: ``"servfail"`` answers
SERVFAIL, ``"refused"`` REFUSED, ``"silent"`` reads questions and answers nothing (a lookup times
out). :attr:`extra` adds hostile records to every answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from typing import Literal, cast

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Mode = Literal["normal", "servfail", "refused", "silent"]

CNAME_HOPS = 8


class DNSServer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.typed: dict[tuple[str, str], list[str]] = {}
        """Records of any type, as text, by (name, type): ``("x.test.", "TXT"): ['"v=1"']``."""
        self.mode: Mode = "normal"
        self.extra: Callable[[dns.message.Message], None] | None = None
        """Called with each response before it is sent, to add whatever a test wants in it."""
        self.questions: list[tuple[str, str]] = []
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", self.port)
        )
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector loop hands a _SelectorDatagramTransport, which has sendto() but is
        # not registered as a DatagramTransport subclass: an isinstance check would fail here.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return
        if self.mode == "silent" or not query.question:
            return
        question = query.question[0]
        self.questions.append((question.name.to_text(), dns.rdatatype.to_text(question.rdtype)))
        response = dns.message.make_response(query)
        if self.mode == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif self.mode == "refused":
            response.set_rcode(dns.rcode.REFUSED)
        else:
            self._answer(response, question.name, question.rdtype)
        if self.extra is not None:
            self.extra(response)
        if self._transport is not None:
            self._transport.sendto(response.to_wire(max_size=65535), addr)

    def _answer(
        self, response: dns.message.Message, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> None:
        known = {dns.name.from_text(k): v for k, v in self.records.items()}
        typed: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], list[str]] = {
            (dns.name.from_text(n), dns.rdatatype.from_text(t)): v
            for (n, t), v in self.typed.items()
        }
        if name not in known and not any(n == name for n, _ in typed):
            response.set_rcode(dns.rcode.NXDOMAIN)
            return
        for _ in range(CNAME_HOPS):
            alias = typed.get((name, dns.rdatatype.CNAME))
            if not alias or rdtype == dns.rdatatype.CNAME:
                break
            response.answer.append(
                dns.rrset.from_text_list(name, 5, dns.rdataclass.IN, dns.rdatatype.CNAME, alias)
            )
            name = dns.name.from_text(alias[0])
        version = 4 if rdtype == dns.rdatatype.A else 6 if rdtype == dns.rdatatype.AAAA else 0
        values = [a for a in known.get(name, []) if ipaddress.ip_address(a).version == version]
        values += [v for v in typed.get((name, rdtype), []) if v not in values]
        if values:
            response.answer.append(
                dns.rrset.from_text_list(name, 5, dns.rdataclass.IN, rdtype, values)
            )
