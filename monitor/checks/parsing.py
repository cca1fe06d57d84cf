"""``[[checks]]`` in ``monitor.toml`` made :class:`~monitor.checks.spec.Check` values, or refused
with the file's error machinery (:meth:`monitor.config._Parser.fail`: the file, the line, the
key, what would be right)::

    monitor.toml:12: checks[0].port: must be a whole number from 1 to 65535, got 0

Keys every check takes: ``name`` ``kind`` ``interval`` ``timeout`` ``public`` ``display_name``
``group`` ``conditions``; and by kind: http ``url`` ``method`` ``headers`` ``body``
``token_env`` ``ca_file`` ``follow_redirects``; tcp ``host`` ``port`` ``send`` ``expect``; dns
``host`` ``type`` ``expect`` ``nameserver``; tls ``host`` ``port`` ``min_days`` ``warn_days``
``ca_file`` ``server_name``; postgres ``url_env``. A ``ca_file`` is relative to monitor.toml's
folder and is read when the check runs (a file that cannot be read makes the check unknown, and
it is tried again each run), not at load: the TUI reads the same file, maybe on another host.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from monitor.checks.conditions import Condition, ConditionError, parse_condition
from monitor.checks.spec import (
    Check,
    CheckKind,
    DnsSettings,
    HttpSettings,
    PostgresSettings,
    Settings,
    TcpSettings,
    TlsSettings,
)

if TYPE_CHECKING:
    from monitor.config import ConfigError

MAX_CHECKS = 1000
MAX_CONDITIONS = 20
MAX_HEADERS = 32
MAX_HEADER_CHARS = 1000
MAX_EXPECT = 32
MAX_NAMESERVERS = 8
MAX_SEND = 64 * 1024
MAX_TITLE = 100
MAX_DAYS = 3650
DAY = 86_400.0
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,99}")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "TXT", "SRV", "CAA", "SOA", "PTR")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
"""A label of a name to look up: underscores too (``_sip._tcp.example.org``, SRV's names)."""

COMMON_KEYS = frozenset(
    {"name", "kind", "interval", "timeout", "public", "display_name", "group", "conditions"}
)
KIND_KEYS: Mapping[CheckKind, frozenset[str]] = {
    CheckKind.HTTP: frozenset(
        {"url", "method", "headers", "body", "token_env", "ca_file", "follow_redirects"}
    ),
    CheckKind.TCP: frozenset({"host", "port", "send", "expect"}),
    CheckKind.DNS: frozenset({"host", "type", "expect", "nameserver"}),
    CheckKind.TLS: frozenset({"host", "port", "min_days", "warn_days", "ca_file", "server_name"}),
    CheckKind.POSTGRES: frozenset({"url_env"}),
}


class ConfigParser(Protocol):
    """What of :class:`monitor.config._Parser` this module uses (typed here, not imported: the
    config module imports this one)."""

    path: Path

    def fail(
        self, where: str, problem: str, value: object = None, *, show: bool = True
    ) -> ConfigError: ...

    def text(
        self, table: Mapping[str, object], where: str, *, default: str | None = None
    ) -> str: ...

    def optional_text(self, table: Mapping[str, object], where: str) -> str | None: ...

    def positive(
        self,
        table: Mapping[str, object],
        where: str,
        default: float,
        *,
        most: float,
        least: float | None = None,
    ) -> float: ...


def parse_checks(
    parser: ConfigParser,
    raw: object,
    *,
    taken: Collection[str],
    is_host_name: Callable[[str], bool],
    nameserver: Callable[[str], tuple[str, int] | None],
) -> tuple[Check, ...]:
    """The ``[[checks]]`` array: at most :data:`MAX_CHECKS`, names unique among themselves and
    the targets' (``taken``: each is a component key). ``is_host_name`` and ``nameserver`` are
    the config module's own rules for a host and a ``[dns] nameservers`` entry."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_CHECKS:
        raise parser.fail(
            "checks",
            f"must be at most {MAX_CHECKS} [[checks]] tables",
            raw if not isinstance(raw, list) else f"{len(raw)} checks",
        )
    reader = _Reader(parser, is_host_name, nameserver)
    checks: list[Check] = []
    seen: set[str] = set(taken)
    for n, item in enumerate(raw):
        check = reader.check(item, f"checks[{n}]")
        if check.name in seen:
            whose = "a target's" if check.name in taken else "another check's"
            raise parser.fail(
                f"checks[{n}].name",
                f"is already {whose} name; names are unique among [[targets]] and [[checks]] "
                "(each is a component)",
                check.name,
            )
        seen.add(check.name)
        checks.append(check)
    return tuple(checks)


class _Reader:
    def __init__(
        self,
        parser: ConfigParser,
        is_host_name: Callable[[str], bool],
        nameserver: Callable[[str], tuple[str, int] | None],
    ) -> None:
        self.parser = parser
        self.fail = parser.fail
        self.is_host_name = is_host_name
        self.nameserver = nameserver

    def check(self, raw: object, where: str) -> Check:
        if not isinstance(raw, dict):
            raise self.fail(where, "must be a table", raw)
        written = raw.get("kind")
        if not isinstance(written, str) or written not in {kind.value for kind in CheckKind}:
            kinds = ", ".join(kind.value for kind in CheckKind)
            raise self.fail(f"{where}.kind", f"must be one of {kinds}", written)
        kind = CheckKind(written)
        self.known_keys(raw, where, kind)
        name = self.parser.text(raw, f"{where}.name")
        if not NAME.fullmatch(name):
            raise self.fail(
                f"{where}.name",
                "must be 1 to 63 lowercase letters, digits, '.', '_' or '-', starting with a "
                "letter or digit (it is the component's key)",
                name,
            )
        interval = self.parser.positive(raw, f"{where}.interval", 60.0, most=DAY)
        timeout = self.parser.positive(raw, f"{where}.timeout", 5.0, most=DAY)
        if timeout >= interval:
            # One run still going when the next is due makes the scheduler skip that next one.
            raise self.fail(
                f"{where}.timeout",
                f"must be less than the interval ({interval:g} s): a check must end before the "
                "next is due",
                timeout,
            )
        public = raw.get("public", False)
        if not isinstance(public, bool):
            raise self.fail(f"{where}.public", "must be true or false", public)
        settings = self.settings(raw, where, kind)
        return Check(
            name=name,
            kind=kind,
            settings=settings,
            conditions=self.conditions(raw, where, kind, settings),
            interval=interval,
            timeout=timeout,
            public=public,
            display_name=self.title(raw, f"{where}.display_name"),
            group=self.title(raw, f"{where}.group") or "Services",
        )

    def known_keys(self, raw: Mapping[str, object], where: str, kind: CheckKind) -> None:
        """A key of another kind is named as such; an unknown one lists what this kind takes."""
        allowed = COMMON_KEYS | KIND_KEYS[kind]
        takes = ", ".join(sorted(allowed))
        for key in raw:
            if key in allowed:
                continue
            others = [other.value for other in CheckKind if key in KIND_KEYS[other]]
            problem = (
                f"is a key of a {' or '.join(others)} check, not of a {kind} check"
                if others
                else "unknown key"
            )
            raise self.fail(
                f"{where}.{key}", f"{problem}; a {kind} check takes {takes}", show=False
            )

    def conditions(
        self, raw: Mapping[str, object], where: str, kind: CheckKind, settings: Settings
    ) -> tuple[Condition, ...]:
        written = raw.get("conditions", [])
        example = '["[STATUS] == 200", "[BODY].status == alive"]'
        if not isinstance(written, list) or len(written) > MAX_CONDITIONS:
            raise self.fail(
                f"{where}.conditions",
                f"must be a list of at most {MAX_CONDITIONS} conditions, e.g. {example}",
                written if not isinstance(written, list) else f"{len(written)} conditions",
            )
        parsed = []
        for text in written:
            if not isinstance(text, str):
                raise self.fail(f"{where}.conditions", f"each is a string, e.g. {example}", text)
            try:
                condition = parse_condition(text, kind)
            except ConditionError as error:
                raise self.fail(f"{where}.conditions", str(error), text) from None
            if (
                condition.placeholder == "CERTIFICATE_EXPIRATION"
                and isinstance(settings, HttpSettings)
                and not settings.url.lower().startswith("https://")
            ):
                raise self.fail(
                    f"{where}.conditions",
                    "[CERTIFICATE_EXPIRATION] needs an https:// url (an http:// one has no "
                    "certificate)",
                    text,
                )
            parsed.append(condition)
        return tuple(parsed)

    def settings(self, raw: Mapping[str, object], where: str, kind: CheckKind) -> Settings:
        if kind is CheckKind.HTTP:
            return self.http(raw, where)
        if kind is CheckKind.TCP:
            return TcpSettings(
                host=self.host(raw, f"{where}.host"),
                port=self.port(raw, f"{where}.port", None),
                send=self.bounded(raw, f"{where}.send", MAX_SEND),
                expect=self.bounded(raw, f"{where}.expect", MAX_HEADER_CHARS),
            )
        if kind is CheckKind.DNS:
            return self.dns(raw, where)
        if kind is CheckKind.TLS:
            return self.tls(raw, where)
        url_env = self.env_name(raw, f"{where}.url_env")
        if url_env is None:
            raise self.fail(
                f"{where}.url_env",
                "a postgres check needs url_env: the environment variable that holds its "
                "postgresql:// URL, e.g. QUESTCITY_PG_URL",
            )
        return PostgresSettings(url_env=url_env)

    def http(self, raw: Mapping[str, object], where: str) -> HttpSettings:
        url = self.parser.text(raw, f"{where}.url")
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = 0
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname or port == 0:
            raise self.fail(
                f"{where}.url",
                "must be an http:// or https:// URL with a host (and a port from 1 to 65535)",
                url,
                # A URL's user info and query may hold secrets: such a URL is never shown.
                show=not (parts.username or parts.password or parts.query),
            )
        method = raw.get("method", "GET")
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise self.fail(f"{where}.method", f"must be one of {', '.join(METHODS)}", method)
        follow = raw.get("follow_redirects", True)
        if not isinstance(follow, bool):
            raise self.fail(f"{where}.follow_redirects", "must be true or false", follow)
        return HttpSettings(
            url=url,
            method=method.upper(),
            headers=self.headers(raw.get("headers", {}), f"{where}.headers"),
            body=self.bounded(raw, f"{where}.body", MAX_SEND),
            token_env=self.env_name(raw, f"{where}.token_env"),
            ca_file=self.ca_file(raw, f"{where}.ca_file"),
            follow_redirects=follow,
        )

    def headers(self, raw: object, where: str) -> dict[str, str]:
        example = '{ Accept = "application/json" }'
        if not isinstance(raw, dict) or len(raw) > MAX_HEADERS:
            raise self.fail(
                where,
                f"must be a table of at most {MAX_HEADERS} headers, e.g. {example}",
                raw if not isinstance(raw, dict) else f"{len(raw)} headers",
            )
        headers: dict[str, str] = {}
        for name, value in raw.items():
            if not _HEADER_NAME.fullmatch(name):
                raise self.fail(
                    where, "a header's name is letters, digits and !#$%&'*+.^_`|~-", name
                )
            if (
                not isinstance(value, str)
                or len(value) > MAX_HEADER_CHARS
                or not value.isprintable()
            ):
                raise self.fail(
                    where,
                    f"{name}'s value must be one line of at most {MAX_HEADER_CHARS} printable "
                    "characters",
                    show=False,  # it may be a secret
                )
            headers[name] = value
        return headers

    def dns(self, raw: Mapping[str, object], where: str) -> DnsSettings:
        host = self.parser.text(raw, f"{where}.host")
        bare = host[:-1] if host.endswith(".") else host
        if not 0 < len(bare) <= 253 or not all(_DNS_LABEL.fullmatch(x) for x in bare.split(".")):
            raise self.fail(
                f"{where}.host",
                "must be a name to look up: dot-separated labels of letters, digits, '-' and "
                "'_', e.g. questcity.example.org",
                host,
            )
        record_type = raw.get("type", "A")
        if not isinstance(record_type, str) or record_type.upper() not in RECORD_TYPES:
            raise self.fail(
                f"{where}.type", f"must be one of {', '.join(RECORD_TYPES)}", record_type
            )
        return DnsSettings(
            host=host,
            record_type=record_type.upper(),
            expect=self.expect(raw.get("expect", []), f"{where}.expect"),
            nameservers=self.nameservers(raw.get("nameserver", []), f"{where}.nameserver"),
        )

    def expect(self, raw: object, where: str) -> tuple[str, ...]:
        values = [raw] if isinstance(raw, str) else raw
        if (
            not isinstance(values, list)
            or len(values) > MAX_EXPECT
            or not all(isinstance(v, str) and 0 < len(v.strip()) <= 1000 for v in values)
        ):
            raise self.fail(
                where,
                f"must be an answer or a list of at most {MAX_EXPECT}, each as dig writes it, "
                'e.g. ["10.0.0.5", "10 mail.example.org."]',
                raw,
            )
        return tuple(v.strip() for v in values)

    def nameservers(self, raw: object, where: str) -> tuple[tuple[str, int], ...]:
        example = '"10.0.0.10" or ["127.0.0.1:5353", "[::1]:53"]'
        entries = [raw] if isinstance(raw, str) else raw
        if not isinstance(entries, list) or len(entries) > MAX_NAMESERVERS:
            raise self.fail(
                where, f"must be an address or a list of at most {MAX_NAMESERVERS}: {example}", raw
            )
        servers = []
        for entry in entries:
            server = self.nameserver(entry) if isinstance(entry, str) else None
            if server is None:
                raise self.fail(
                    where,
                    f"each must be an IP address with an optional :PORT, e.g. {example}",
                    entry,
                )
            servers.append(server)
        return tuple(servers)

    def tls(self, raw: Mapping[str, object], where: str) -> TlsSettings:
        min_days = self.days(raw, f"{where}.min_days", 14)
        warn_days = self.days(raw, f"{where}.warn_days", max(30, min_days))
        if warn_days < min_days:
            raise self.fail(
                f"{where}.warn_days",
                f"must be at least min_days ({min_days}): it warns before the check fails",
                warn_days,
            )
        server_name = self.parser.optional_text(raw, f"{where}.server_name")
        if server_name is not None and not self.is_host_name(server_name):
            raise self.fail(
                f"{where}.server_name",
                "must be a host name, e.g. questcity.example.org",
                server_name,
            )
        return TlsSettings(
            host=self.host(raw, f"{where}.host"),
            port=self.port(raw, f"{where}.port", 443),
            min_days=min_days,
            warn_days=warn_days,
            ca_file=self.ca_file(raw, f"{where}.ca_file"),
            server_name=server_name,
        )

    def host(self, raw: Mapping[str, object], where: str) -> str:
        host = self.parser.text(raw, where)
        bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            return str(ipaddress.ip_address(bare))
        except ValueError:
            pass
        if not self.is_host_name(host):
            raise self.fail(
                where, "must be a host name or an IP address, e.g. questcity.example.org", host
            )
        return host

    def port(self, raw: Mapping[str, object], where: str, default: int | None) -> int:
        key = where.rsplit(".", 1)[-1]
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise self.fail(where, "must be a whole number from 1 to 65535", value)
        return value

    def days(self, raw: Mapping[str, object], where: str, default: int) -> int:
        value = raw.get(where.rsplit(".", 1)[-1], default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
            raise self.fail(where, f"must be a whole number of days from 0 to {MAX_DAYS}", value)
        return value

    def env_name(self, raw: Mapping[str, object], where: str) -> str | None:
        value = raw.get(where.rsplit(".", 1)[-1])
        if value is None:
            return None
        if not isinstance(value, str) or not ENV_NAME.fullmatch(value):
            raise self.fail(
                where,
                "must be an environment variable's name (capitals, digits and '_', e.g. "
                "QUESTCITY_PG_URL): the secret stays out of the file",
                value,
            )
        return value

    def ca_file(self, raw: Mapping[str, object], where: str) -> str | None:
        value = self.parser.optional_text(raw, where)
        if value is None:
            return None
        return str(self.parser.path.parent / Path(value).expanduser())

    def bounded(self, raw: Mapping[str, object], where: str, most: int) -> str | None:
        value = raw.get(where.rsplit(".", 1)[-1])
        if value is None:
            return None
        if not isinstance(value, str) or not 0 < len(value) <= most:
            raise self.fail(where, f"must be a string of 1 to {most} characters", value)
        return value

    def title(self, raw: Mapping[str, object], where: str) -> str | None:
        value = self.parser.optional_text(raw, where)
        if value is not None and (len(value) > MAX_TITLE or not value.isprintable()):
            raise self.fail(
                where, f"must be one line of at most {MAX_TITLE} printable characters", value
            )
        return value
