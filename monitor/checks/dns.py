"""A ``dns`` check: ask for ``host``'s records of ``type`` and judge the answer.

The name servers asked are the check's own (``nameserver``), else ``[dns] nameservers``, else the
system's (``/etc/resolv.conf``, with its search list, as the system resolver would). The answer's
code is ``[DNS_RCODE]`` (``NOERROR``, ``NXDOMAIN``, ``SERVFAIL``…); its records (the asked type's,
CNAMEs followed, as dnspython writes them: ``10.0.0.5``, ``10 mail.example.org.``) are
``[BODY]``, sorted and joined by spaces.

- healthy: ``NOERROR``, each ``expect`` among the records, every written condition held;
- unhealthy: another code (``name does not resolve (NXDOMAIN)``, a server failure), an
  ``expect`` not there (``expect 10.0.0.9 failed: got 10.0.0.5 10.0.0.6``), a condition failed;
- unreachable: no server answered within the deadline (or at all).

A written condition that reads ``[DNS_RCODE]`` replaces the implicit ``[DNS_RCODE] == NOERROR``
(``[DNS_RCODE] == NXDOMAIN`` watches that a name is gone). An answer is outside input: at most
:data:`MAX_RECORDS` records are read, each cut to :data:`RECORD_CHARS` printable characters.
"""

from __future__ import annotations

import contextlib
import ipaddress

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset

from monitor.checks.conditions import Observation
from monitor.checks.context import RunContext
from monitor.checks.resolve import elapsed_ms
from monitor.checks.run import failure_of, judged, names, unreached, unrunnable
from monitor.checks.spec import OBSERVED_CHARS, Check, DnsSettings, Outcome
from shared.resilience import Clock
from shared.resilience.sanitize import one_line

MAX_RECORDS = 64
"""Records of an answer read, at most (a hostile server may send hundreds)."""
RECORD_CHARS = 255
"""One record's text, at most (a TXT record may be kilobytes)."""
ATTEMPT_SECONDS = 2.0
"""One server's share of the deadline before the next is asked (dnspython's default)."""
RCODE = "DNS_RCODE"
NOERROR = "NOERROR"
NO_CONFIGURATION = "no DNS configuration on this host: set nameserver or [dns] nameservers"

_SAID = {
    "NXDOMAIN": "name does not resolve (NXDOMAIN)",
    "SERVFAIL": "name server failed (SERVFAIL)",
    "REFUSED": "name server refused the query (REFUSED)",
}
_TEXT_TYPES = frozenset({dns.rdatatype.TXT, dns.rdatatype.SPF})


async def run(check: Check, context: RunContext) -> Outcome:
    """One run; the overall deadline is also the runner's."""
    settings = check.settings
    if not isinstance(settings, DnsSettings):
        raise TypeError(f"{check.name} is a {check.kind} check, not dns")
    try:
        rdtype = dns.rdatatype.from_text(settings.record_type)
        dns.name.from_text(settings.host)  # a name dnspython can ask for at all
    except dns.exception.DNSException:
        rdtype = dns.rdatatype.NONE
    if rdtype == dns.rdatatype.NONE or dns.rdatatype.is_metatype(rdtype):
        return unrunnable(f"{one_line(check.where, OBSERVED_CHARS)} cannot be asked")
    nameservers = settings.nameservers or context.nameservers
    try:
        resolver = _resolver(nameservers, check.timeout)
    except dns.exception.DNSException:
        return unrunnable(NO_CONFIGURATION)
    except ValueError:
        return unrunnable("a name server is not an IP address")
    clock = context.clock
    started = clock.monotonic()
    records: list[str] = []
    try:
        answer = await resolver.resolve(
            settings.host,
            rdtype,
            raise_on_no_answer=False,
            lifetime=check.timeout,
            # A short name through resolv.conf's search list, as the system resolver does;
            # explicit servers have no search list.
            search=not nameservers,
        )
    except dns.resolver.NXDOMAIN:
        rcode = "NXDOMAIN"
    except dns.resolver.YXDOMAIN:
        rcode = "YXDOMAIN"
    except dns.resolver.NoNameservers as error:
        answered = _answered_code(error)
        if answered is None:
            return _silent(check, error, started, clock)
        rcode = answered
    except dns.exception.Timeout:
        latency_ms = elapsed_ms(clock, started)
        return unreached(check, f"timed out after {check.timeout:g} s", latency_ms=latency_ms)
    except dns.exception.DNSException:
        return unreached(check, "no valid answer from the name server", latency_ms=None)
    else:
        rcode = NOERROR
        if answer.rrset is not None:
            records = _texts(answer.rrset)
    latency_ms = elapsed_ms(clock, started)
    body = " ".join(records)
    problems: list[str] = []
    if rcode != NOERROR and not names(check, RCODE):
        problems.append(_SAID.get(rcode, f"name server answered {rcode}"))
    else:
        got = one_line(body, OBSERVED_CHARS) or "nothing"
        problems.extend(
            f"expect {one_line(wanted, OBSERVED_CHARS)} failed: got {got}"
            for wanted in settings.expect
            if not _among(wanted, records, rdtype)
        )
    seen = Observation(response_ms=latency_ms, body=body, dns_rcode=rcode)
    return judged(check, seen, latency_ms=latency_ms, failure="; ".join(problems) or None)


def _resolver(
    nameservers: tuple[tuple[str, int], ...], timeout: float
) -> dns.asyncresolver.Resolver:
    """A resolver for these servers (none: the system's configuration, read now: a container's
    resolv.conf may change), no cache: every run asks."""
    resolver = dns.asyncresolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(address, port) for address, port in nameservers
        ]
    resolver.timeout = min(timeout, ATTEMPT_SECONDS)
    resolver.lifetime = timeout
    resolver.cache = None
    return resolver


def _answered_code(error: dns.resolver.NoNameservers) -> str | None:
    """The code a server answered with when every server failed (SERVFAIL, REFUSED…); None
    when none answered at all."""
    for failure in reversed(error.kwargs.get("errors") or []):
        response = failure[-1] if isinstance(failure, tuple) and failure else None
        if isinstance(response, dns.message.Message):
            return dns.rcode.to_text(response.rcode())
    return None


def _silent(
    check: Check, error: dns.resolver.NoNameservers, started: float, clock: Clock
) -> Outcome:
    """No server answered: refused (ICMP), no route, a garbled reply — said as a class."""
    for failure in error.kwargs.get("errors") or []:
        cause = failure[3] if isinstance(failure, tuple) and len(failure) > 3 else None
        if isinstance(cause, OSError):
            status, text = failure_of(cause, check.timeout)
            return unreached(check, text, latency_ms=elapsed_ms(clock, started), status=status)
    return unreached(check, "no name server answered", latency_ms=elapsed_ms(clock, started))


def _texts(rrset: dns.rrset.RRset) -> list[str]:
    """The records as text, at most :data:`MAX_RECORDS`, each one printable line, sorted."""
    texts: list[str] = []
    for index, record in enumerate(rrset):
        if index >= MAX_RECORDS:
            break
        texts.append(one_line(record.to_text(), RECORD_CHARS))
    return sorted(texts)


def _among(wanted: str, records: list[str], rdtype: dns.rdatatype.RdataType) -> bool:
    """Whether ``wanted`` is one of the records, as people write them: a name with or without
    its final dot, in any case, an IPv6 address in any of its spellings, a TXT string with or
    without its quotes."""
    forms = {form for record in records for form in _forms(record, rdtype)}
    return bool(_forms(wanted.strip(), rdtype) & forms)


def _forms(text: str, rdtype: dns.rdatatype.RdataType) -> set[str]:
    if rdtype in _TEXT_TYPES:
        forms = {text}
        if len(text) >= 2 and text[0] == text[-1] == '"' and '"' not in text[1:-1]:
            forms.add(text[1:-1])
        return forms
    lowered = text.lower()
    forms = {lowered, lowered.rstrip(".")}
    with contextlib.suppress(ValueError):
        forms.add(str(ipaddress.ip_address(lowered)))
    return forms
