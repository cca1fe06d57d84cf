"""A ``[[checks]]`` entry as a value, and what one run of it found.

:class:`Check` is what ``monitor.toml`` says (parsed by :mod:`monitor.checks.parsing`), with the
kind's own settings in :attr:`Check.settings`. :class:`Outcome` is what one run found, made into
the store's :class:`~monitor.store.models.CheckRecord` by :meth:`Outcome.record`.

What an outcome says is for operators (the TUI, alerts), never the public: it names which
condition failed and the value observed, each cut to a few dozen printable characters, and never
a URL's user info, password or query (a check's URL is shown as :attr:`Check.where` says).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from monitor.store.models import CheckRecord, Status

if TYPE_CHECKING:
    from monitor.checks.conditions import Condition

ERROR_CHARS = 200
"""``checks.error``: what a failed run says (the failed conditions, or why it could not run)."""
OBSERVED_CHARS = 60
"""An observed value in an outcome (a body, a header, an answer) is cut to this."""


class CheckKind(enum.StrEnum):
    HTTP = "http"
    TCP = "tcp"
    DNS = "dns"
    TLS = "tls"
    POSTGRES = "postgres"


@dataclass(frozen=True, slots=True)
class HttpSettings:
    url: str
    """May carry user info or a query: never shown (:attr:`Check.where`)."""
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None
    token_env: str | None = None
    """An environment variable whose value is sent as ``Authorization: Bearer …``."""
    ca_file: str | None = None
    """A PEM file of the CAs to trust (a private CA); None: the system's."""
    follow_redirects: bool = True


@dataclass(frozen=True, slots=True)
class TcpSettings:
    host: str
    port: int
    send: str | None = None
    """Sent once connected (UTF-8)."""
    expect: str | None = None
    """Must appear in what the server sends back (read up to a bound, within the timeout)."""


@dataclass(frozen=True, slots=True)
class DnsSettings:
    host: str
    record_type: str = "A"
    """``type`` in the file."""
    expect: tuple[str, ...] = ()
    """Each must be among the answers (as dnspython writes them: ``10.0.0.5``, ``mail.x.``)."""
    nameservers: tuple[tuple[str, int], ...] = ()
    """``nameserver`` in the file; empty: ``[dns] nameservers``, else the system's resolver."""


@dataclass(frozen=True, slots=True)
class TlsSettings:
    host: str
    port: int = 443
    min_days: int = 14
    """Fewer days left than this: the check fails (an alert pages, a public component is down)."""
    warn_days: int = 30
    """Fewer days left than this (and at least ``min_days``): healthy, with a warning that
    raises ``certificate_expiring``."""
    ca_file: str | None = None
    server_name: str | None = None
    """The name the certificate must be valid for (SNI); None: ``host``."""


@dataclass(frozen=True, slots=True)
class PostgresSettings:
    url_env: str
    """The environment variable holding the ``postgresql://`` URL (the role, its password)."""


Settings = HttpSettings | TcpSettings | DnsSettings | TlsSettings | PostgresSettings


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    """Its component key: unique among targets and checks, no ``/``."""
    kind: CheckKind
    settings: Settings
    conditions: tuple[Condition, ...] = ()
    """The conditions written in the file; each kind also has its own implicit ones."""
    interval: float = 60.0
    timeout: float = 5.0
    """An overall deadline on one run (connect, answer, everything), below the interval."""
    public: bool = False
    """A component on the status page (and its incidents public); else operators' alone."""
    display_name: str | None = None
    group: str = "Services"

    @property
    def title(self) -> str:
        return self.display_name or self.name

    @property
    def where(self) -> str:
        """What it checks, for people: a URL without user info, query or fragment,
        ``host:port``, ``A example.org``, or the variable a PostgreSQL URL is read from."""
        settings = self.settings
        if isinstance(settings, HttpSettings):
            return safe_url(settings.url)
        if isinstance(settings, TcpSettings | TlsSettings):
            return host_port(settings.host, settings.port)
        if isinstance(settings, DnsSettings):
            return f"{settings.record_type} {settings.host}"
        return f"${settings.url_env}"


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def safe_url(url: str) -> str:
    """``scheme://host[:port]/path``: no user info, no query, no fragment (where secrets go)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(frozen=True, slots=True)
class ConditionResult:
    condition: str
    """As written in the file (``[STATUS] == 200``)."""
    ok: bool
    observed: str | None = None
    """The value the condition's left side had, sanitised and cut to :data:`OBSERVED_CHARS`;
    None when there was none (the placeholder does not apply, the body was not JSON…)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one run of a check found."""

    status: Status
    """healthy: it answered and every condition held; unhealthy: it answered and a condition
    failed (or the answer was wrong: a bad certificate, NXDOMAIN, a refused login);
    unreachable: it could not be reached (refused, timed out, the name does not resolve);
    unknown: the monitor could not run it (a variable it needs is not set)."""
    latency_ms: float | None
    http_status: int | None = None
    error: str | None = None
    """Why it is not healthy: a plain class (``connection refused``, ``timed out after 5 s``)
    or the failed conditions (``[STATUS] == 200 failed: got 503``). Never a URL."""
    warning: str | None = None
    """A healthy run with something to say (a certificate expiring within ``warn_days``)."""
    results: tuple[ConditionResult, ...] = ()

    def record(self, check: Check, at: float, *, manual: bool = False) -> CheckRecord:
        """The store's record of this run: the error (or, healthy, the warning) cut to
        :data:`ERROR_CHARS`."""
        text = self.error if self.error is not None else self.warning
        return CheckRecord(
            target=check.name,
            at=at,
            status=self.status,
            latency_ms=self.latency_ms,
            http_status=self.http_status,
            error=None if text is None else text[:ERROR_CHARS],
            manual=manual,
        )
