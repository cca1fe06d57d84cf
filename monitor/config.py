"""``monitor.toml``: what to watch, where to keep history, when to alert, whom to tell.

Read by ``questcity monitor`` and ``questcity tui``. A bad file is refused before anything starts,
with an error naming the file, the line and the key, and what would be right::

    monitor.toml:7: targets[0].interval: must be a number of seconds greater than 0, got "ten"

Over 500 lines, for a reason: it is one parser of one file, every key's check beside the others
and all of them sharing the one error machinery (:meth:`_Parser.fail` finds the line); split by
table, each piece would be a few checks and an import of that machinery.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from monitor.checks.parsing import parse_checks
from monitor.checks.spec import Check

# [storage] is read by the store's own settings (the status page reads it there too).
from monitor.public.settings import PublicSettings, PublicSettingsError, public_settings
from monitor.store.settings import DEFAULT_STORAGE_URL as DEFAULT_STORAGE_URL
from monitor.store.settings import Retention as Retention
from monitor.store.settings import StorageSettingsError, storage_settings

DEFAULT_PATH = Path("monitor.toml")
MAX_REPLICAS = 64
"""Replicas one target may name, and addresses one ``dns:`` entry may bring (each is probed,
stored and drawn on its own every interval)."""
DNS_PREFIX = "dns:"
DEFAULT_DNS_PORT = 53
MAX_LEASE_TTL = 300.0


class ConfigError(ValueError):
    """``monitor.toml`` is missing, unreadable, or has a value the monitor cannot use."""


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    url: str
    interval: float = 10.0
    timeout: float = 5.0
    token_env: str | None = None
    admin_token_env: str | None = None
    display_name: str | None = None
    group: str = "Services"
    services: Mapping[str, str] = field(default_factory=dict)
    """Display names of the target's services (``database = "Quests and accounts"``)."""
    replicas: tuple[str, ...] = ()
    """The target's replicas (ARCHITECTURE §9): base URLs, or ``dns:NAME:PORT`` for every
    address NAME resolves to, looked up each interval. Empty: one replica, at ``url``."""
    expected_replicas: int | None = None
    """How many replicas the target should have (our key, beside DESIGN's): a round that finds
    fewer counts each missing one as unreachable in the aggregate. Kubernetes drops a
    crash-looping pod from its headless Service's answer, so without it 2 of 3 pods down reads
    as one healthy replica. None: a replica that left the set is retired, not down."""

    @property
    def title(self) -> str:
        return self.display_name or self.name

    def token(self, environ: Mapping[str, str] | None = None) -> str | None:
        return _env(self.token_env, environ)

    def admin_token(self, environ: Mapping[str, str] | None = None) -> str | None:
        return _env(self.admin_token_env, environ)

    def service_title(self, service: str) -> str:
        return self.services.get(service, service.replace("_", " ").capitalize())


def _env(name: str | None, environ: Mapping[str, str] | None) -> str | None:
    if not name:
        return None
    value = (os.environ if environ is None else environ).get(name, "").strip()
    return value or None


@dataclass(frozen=True, slots=True)
class IncidentRules:
    open_after: int = 2
    """Checks in a row in which a component is not healthy before an incident opens."""
    resolve_after: int = 3
    """Healthy checks in a row before it resolves."""


@dataclass(frozen=True, slots=True)
class AlertRules:
    """The seed's alerts, each with how long its condition must hold before it fires."""

    breaker_open_for: float = 300.0
    check_failure_rate: float = 0.5
    s3_failure_rate: float = 0.3
    window: float = 300.0
    """Seconds over which failure rates are computed."""
    pool_exhausted_for: float = 0.0
    unreachable_for: float = 60.0
    hold_down: float = 30.0
    """Seconds a firing alert's condition must stay clear before it resolves (one good check
    in a flapping outage does not resolve and re-fire it)."""
    token_expiry_warning: float = 3 * 86400.0
    """A target's monitor token that expires sooner than this raises ``monitor_token_expiring``."""


@dataclass(frozen=True, slots=True)
class Notifier:
    kind: str  # "log", "webhook" or "apprise"
    url: str | None = None
    timeout: float = 5.0
    urls_env: str | None = None
    """``apprise``: the environment variable holding its Apprise URLs (space-separated), so
    that the secrets in them stay out of the file."""
    repeat_every: float | None = None
    """Seconds between reminders of an alert that fires and is not acknowledged (None: none)."""

    def apprise_urls(self, environ: Mapping[str, str] | None = None) -> list[str]:
        """The Apprise URLs from ``urls_env`` (empty if it is unset or blank)."""
        value = _env(self.urls_env, environ)
        return value.split() if value else []


TUI_ROLES = ("viewer", "operator", "admin")
"""``monitor.tui.identity.Role``'s values (this module imports nothing of the TUI's)."""
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")


@dataclass(frozen=True, slots=True)
class TuiSettings:
    """``[tui]``: who may use the browser TUI (``questcity tui --serve``)."""

    users_file: Path | None = None
    """The users file (names, scrypt password hashes, roles), relative to monitor.toml's
    folder; None: the single password of ``QUESTCITY_TUI_PASSWORD`` (one admin)."""
    trusted_header: str | None = None
    """A header an authenticating proxy sets to the signed-in user (oauth2-proxy's
    ``X-Forwarded-User`` or ``X-Forwarded-Email``), believed only from ``trusted_proxies``."""
    default_role: str = "viewer"
    """The role of a header user the users file does not name."""
    trusted_proxies: tuple[str, ...] = ()
    """Reverse proxies' addresses or networks (as ``--trusted-proxy``, which adds to them). With
    a ``trusted_header``, none may be wider than :data:`MIN_PROXY_PREFIX` (see there)."""


MIN_PROXY_PREFIX = {4: 8, 6: 32}
"""The shortest prefix, by IP version, a trusted proxy's network may have while ``[tui]
trusted_header`` is set: a peer in it names the signed-in user, so a catch-all (``0.0.0.0/0``,
``::/0``) or anything wider than an IPv4 /8 or an IPv6 /32 (an ISP's allocation) would let any
client name itself, admin included. Name the proxy's own address or its private network."""


def too_wide_for_header(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    """Whether a trusted proxy's network is too wide to believe a user header from."""
    return network.prefixlen < MIN_PROXY_PREFIX[network.version]


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    path: Path
    storage_url: str = DEFAULT_STORAGE_URL
    targets: tuple[Target, ...] = ()
    retention: Retention = field(default_factory=Retention)
    incidents: IncidentRules = field(default_factory=IncidentRules)
    alerts: AlertRules = field(default_factory=AlertRules)
    notifiers: tuple[Notifier, ...] = (Notifier("log"),)
    dns_nameservers: tuple[tuple[str, int], ...] = ()
    """``[dns] nameservers``: (address, port) of the servers ``dns:`` replicas are resolved
    with; empty: the system's (``/etc/resolv.conf``)."""
    lease_ttl: float | None = None
    """``[monitor] lease_ttl``: seconds without a renewal after which a standby monitor takes
    over; None: derived from the shortest target interval."""
    tui: TuiSettings = field(default_factory=TuiSettings)
    public: PublicSettings = field(default_factory=PublicSettings)
    """``[page]``, ``[smtp]``, ``[subscriptions]`` (:mod:`monitor.public.settings`, which the
    status page reads too)."""
    checks: tuple[Check, ...] = ()
    """``[[checks]]``: checks beyond the health API (:mod:`monitor.checks`)."""

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)

    def check(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)


def replica_key(url: str) -> str:
    """The key of the replica at base URL ``url``: ``host:port``, the port explicit (80/443 by
    scheme), an IPv6 host bracketed (``[::1]:8000``); no scheme, user info or path."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def is_host_name(name: str) -> bool:
    """A DNS name a resolver can be asked about: dot-separated labels of letters, digits and
    inner hyphens, at most 63 characters each and 253 in all (a trailing dot allowed)."""
    name = name[:-1] if name.endswith(".") else name
    return 0 < len(name) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in name.split("."))


def dns_replica(entry: str) -> tuple[str, int] | None:
    """(NAME, PORT) of a ``dns:NAME:PORT`` entry; None if ``entry`` is not one."""
    if not entry.startswith(DNS_PREFIX):
        return None
    name, _, port = entry[len(DNS_PREFIX) :].rpartition(":")
    if not is_host_name(name) or not port.isdigit() or not 1 <= int(port) <= 65535:
        return None
    return name.lower(), int(port)


# -- loading ----------------------------------------------------------------------------------


def load_config(path: Path = DEFAULT_PATH) -> MonitorConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file; write one (see README, 'monitor.toml') or pass --config PATH"
        ) from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror})") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path = DEFAULT_PATH) -> MonitorConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # Python 3.11's error has no line attribute; its message ends "(at line N, column M)".
        message = str(error)
        found = re.search(r"\(at line (\d+), column \d+\)$", message)
        line = found.group(1) if found else "1"
        problem = message[: found.start()].strip() if found else message
        raise ConfigError(f"{path}:{line}: syntax: not valid TOML: {problem}") from None
    except RecursionError:
        # tomllib recurses once per level of nesting: a file nested thousands deep ends here.
        raise ConfigError(
            f"{path}:{_deepest_line(text)}: syntax: arrays or tables nested too deeply; "
            "a monitor.toml needs at most a few levels"
        ) from None
    return _Parser(text, path).config(data)


def _deepest_line(text: str, depth: int = 100) -> int:
    """The first line where brackets nest ``depth`` deep (best effort: strings are not skipped)."""
    level = 0
    for number, line in enumerate(text.splitlines(), start=1):
        for char in line:
            level += (char in "[{") - (char in "]}")
            if level >= depth:
                return number
    return 1


_MAX_SHOWN = 60
"""A value quoted in an error message is cut to this many characters."""
_DAY = 86_400.0
_WEEK = 7 * _DAY


_NUMBER = (int, float)


class _Parser:
    def __init__(self, text: str, path: Path) -> None:
        self.lines = text.splitlines()
        self.path = path

    def fail(
        self, where: str, problem: str, value: object = None, *, show: bool = True
    ) -> ConfigError:
        line = self._line_of(where)
        location = f"{self.path}:{line}" if line else str(self.path)
        quoted = repr(value)
        if len(quoted) > _MAX_SHOWN:
            quoted = quoted[: _MAX_SHOWN - 1] + "…"
        shown = f", got {quoted}" if show and value is not None else ""
        return ConfigError(f"{location}: {where}: {problem}{shown}")

    def _line_of(self, where: str) -> int | None:
        """Best-effort line of ``where`` (``targets[1].interval``) in the file, for messages."""
        parts = re.findall(r"[A-Za-z_][A-Za-z0-9_-]*|\[\d+\]", where)
        key = parts[-1] if parts and not parts[-1].startswith("[") else None
        section, index = (
            (parts[0], int(parts[1][1:-1]))
            if len(parts) > 1 and parts[1].startswith("[")
            else (parts[0] if len(parts) > 1 else None, None)
        )
        start = 0
        if section is not None:
            headers = [
                n
                for n, line in enumerate(self.lines)
                if re.match(rf"\s*\[\[?\s*{re.escape(section)}\s*\]\]?", line)
            ]
            if index is not None and index < len(headers):
                start = headers[index]
            elif headers:
                start = headers[0]
        if key is None:
            return start + 1 if section is not None else None
        for number in range(start, len(self.lines)):
            if re.match(rf"\s*{re.escape(key)}\s*=", self.lines[number]):
                return number + 1
        return start + 1 if section is not None else None

    def config(self, data: dict[str, object]) -> MonitorConfig:
        known = {
            "storage",
            "targets",
            "checks",
            "incidents",
            "alerts",
            "notifiers",
            "dns",
            "monitor",
            "tui",
            "page",
            "smtp",
            "subscriptions",
        }
        for key in data:
            if key not in known:
                raise self.fail(
                    key, f"unknown section; expected one of {', '.join(sorted(known))}", show=False
                )
        try:
            storage = storage_settings(self.table(data, "storage"))
        except StorageSettingsError as error:
            raise self.fail(error.key, error.problem, error.value) from None
        raw_targets = data.get("targets", [])
        if not isinstance(raw_targets, list) or not raw_targets:
            raise self.fail(
                "targets", "add at least one [[targets]] table with a name and a url", show=False
            )
        targets = tuple(self.target(t, n) for n, t in enumerate(raw_targets))
        names = [t.name for t in targets]
        for n, name in enumerate(names):
            if names.index(name) != n:
                raise self.fail(f"targets[{n}].name", "names must be unique", name)
        try:
            public = public_settings(data)
        except PublicSettingsError as error:
            raise self.fail(error.key, error.problem, error.value) from None
        incidents = self.table(data, "incidents")
        alerts = self.table(data, "alerts")
        monitor = self.table(data, "monitor")
        self.known_keys(monitor, "monitor", {"lease_ttl"})
        lease_ttl = (
            None
            if monitor.get("lease_ttl") is None
            else self.positive(monitor, "monitor.lease_ttl", 0.0, least=1.0, most=MAX_LEASE_TTL)
        )
        return MonitorConfig(
            path=self.path,
            storage_url=storage.url,
            targets=targets,
            retention=storage.retention,
            incidents=IncidentRules(
                open_after=self.count(incidents, "incidents.open_after", 2),
                resolve_after=self.count(incidents, "incidents.resolve_after", 3),
            ),
            alerts=AlertRules(
                breaker_open_for=self.seconds(alerts, "alerts.breaker_open_for", 300.0),
                check_failure_rate=self.rate(alerts, "alerts.check_failure_rate", 0.5),
                s3_failure_rate=self.rate(alerts, "alerts.s3_failure_rate", 0.3),
                window=self.positive(alerts, "alerts.window", 300.0, most=_WEEK),
                pool_exhausted_for=self.seconds(alerts, "alerts.pool_exhausted_for", 0.0),
                unreachable_for=self.seconds(alerts, "alerts.unreachable_for", 60.0),
                hold_down=self.seconds(alerts, "alerts.hold_down", 30.0, most=86400.0),
                token_expiry_warning=self.seconds(
                    alerts, "alerts.token_expiry_warning", 3 * 86400.0, most=365 * 86400.0
                ),
            ),
            notifiers=self.notifiers(data.get("notifiers", [{"type": "log"}])),
            dns_nameservers=self.nameservers(self.table(data, "dns")),
            lease_ttl=lease_ttl,
            tui=self.tui(self.table(data, "tui")),
            public=public,
            checks=parse_checks(
                self,
                data.get("checks"),
                taken=names,
                is_host_name=is_host_name,
                nameserver=_nameserver,
            ),
        )

    def tui(self, table: Mapping[str, object]) -> TuiSettings:
        self.known_keys(
            table, "tui", {"users_file", "trusted_header", "default_role", "trusted_proxies"}
        )
        users_file = self.optional_text(table, "tui.users_file")
        header = self.optional_text(table, "tui.trusted_header")
        if header is not None and not _HEADER_NAME.fullmatch(header):
            raise self.fail("tui.trusted_header", "must be an HTTP header name", header)
        if header is not None and header.lower() in {"authorization", "cookie", "host"}:
            raise self.fail(
                "tui.trusted_header",
                "must be the proxy's user header, e.g. X-Forwarded-User",
                header,
            )
        role = table.get("default_role", "viewer")
        if role not in TUI_ROLES:
            raise self.fail("tui.default_role", f"must be one of {', '.join(TUI_ROLES)}", role)
        proxies = table.get("trusted_proxies", [])
        if not isinstance(proxies, list) or len(proxies) > MAX_REPLICAS:
            raise self.fail(
                "tui.trusted_proxies", f"must be a list of up to {MAX_REPLICAS} addresses", proxies
            )
        for proxy in proxies:
            try:
                if not isinstance(proxy, str):  # ip_network takes an int as an address
                    raise TypeError(proxy)
                network = ipaddress.ip_network(proxy, strict=False)
            except (TypeError, ValueError):
                raise self.fail(
                    "tui.trusted_proxies", "each must be an IP address or network", proxy
                ) from None
            if header is not None and too_wide_for_header(network):
                raise self.fail(
                    "tui.trusted_proxies",
                    f"with trusted_header set, a network wider than /{MIN_PROXY_PREFIX[4]} "
                    f"(IPv4) or /{MIN_PROXY_PREFIX[6]} (IPv6) would let any client in it name "
                    "itself, admin included: name the authenticating proxy's own address",
                    proxy,
                )
        return TuiSettings(
            users_file=None if users_file is None else self.path.parent / users_file,
            trusted_header=header,
            default_role=str(role),
            trusted_proxies=tuple(str(proxy) for proxy in proxies),
        )

    def known_keys(self, table: Mapping[str, object], where: str, known: set[str]) -> None:
        for key in table:
            if key not in known:
                raise self.fail(
                    f"{where}.{key}",
                    "unknown key; expected one of " + ", ".join(sorted(known)),
                    show=False,
                )

    def table(self, data: Mapping[str, object], name: str) -> dict[str, object]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(name, "must be a table", value)
        return value

    def text(self, table: Mapping[str, object], where: str, *, default: str | None = None) -> str:
        key = where.rsplit(".", 1)[-1]
        value = table.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, "must be a non-empty string", value)
        return value.strip()

    def optional_text(self, table: Mapping[str, object], where: str) -> str | None:
        key = where.rsplit(".", 1)[-1]
        return None if table.get(key) is None else self.text(table, where)

    def positive(
        self,
        table: Mapping[str, object],
        where: str,
        default: float,
        *,
        most: float,
        least: float | None = None,
    ) -> float:
        """A number in (0, most] (or [least, most]): an absurd value (``1e300``) would overflow
        the scheduler's and the store's time arithmetic long after start-up, so it is refused
        here."""
        value = table.get(where.rsplit(".", 1)[-1], default)
        if (
            isinstance(value, bool)
            or not isinstance(value, _NUMBER)
            or not math.isfinite(value)
            or not (least <= value if least is not None else value > 0)
            or not value <= most
        ):
            lower = f"from {least:g} to" if least is not None else "greater than 0 and at most"
            raise self.fail(where, f"must be a number {lower} {most:g}", value)
        return float(value)

    def seconds(
        self, table: Mapping[str, object], where: str, default: float, *, most: float = _WEEK
    ) -> float:
        value = table.get(where.rsplit(".", 1)[-1], default)
        if (
            isinstance(value, bool)
            or not isinstance(value, _NUMBER)
            or not (math.isfinite(value) and 0 <= value <= most)
        ):
            raise self.fail(where, f"must be a number of seconds from 0 to {most:g}", value)
        return float(value)

    def rate(self, table: Mapping[str, object], where: str, default: float) -> float:
        value = table.get(where.rsplit(".", 1)[-1], default)
        if isinstance(value, bool) or not isinstance(value, _NUMBER) or not 0 < value <= 1:
            raise self.fail(where, "must be a fraction in (0, 1], e.g. 0.5 for 50 %", value)
        return float(value)

    def count(
        self, table: Mapping[str, object], where: str, default: int, *, most: int = 1000
    ) -> int:
        value = table.get(where.rsplit(".", 1)[-1], default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            raise self.fail(where, f"must be a whole number from 1 to {most}", value)
        return value

    def target(self, raw: object, n: int) -> Target:
        where = f"targets[{n}]"
        if not isinstance(raw, dict):
            raise self.fail(where, "must be a table", raw)
        known = {
            "name",
            "url",
            "interval",
            "timeout",
            "token_env",
            "admin_token_env",
            "display_name",
            "group",
            "services",
            "replicas",
            "expected_replicas",
        }
        for key in raw:
            if key not in known:
                raise self.fail(
                    f"{where}.{key}",
                    "unknown key; expected one of " + ", ".join(sorted(known)),
                    show=False,
                )
        url = self.text(raw, f"{where}.url")
        if not re.match(r"^https?://[^/\s]+", url):
            raise self.fail(f"{where}.url", "must be an http:// or https:// base URL", url)
        interval = self.positive(raw, f"{where}.interval", 10.0, most=_DAY)
        timeout = self.positive(raw, f"{where}.timeout", 5.0, most=_DAY)
        if timeout >= interval:
            # The timeout is the deadline of a whole check; one still running when the next is
            # due makes the scheduler skip that next one.
            raise self.fail(
                f"{where}.timeout",
                f"must be less than the interval ({interval:g} s): a check must end before the "
                "next is due",
                timeout,
            )
        services = raw.get("services", {})
        if not isinstance(services, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in services.items()
        ):
            raise self.fail(
                f"{where}.services",
                'must map service names to display names, e.g. { database = "Quests" }',
                services,
            )
        name = self.text(raw, f"{where}.name")
        replicas = self.replicas(raw.get("replicas"), f"{where}.replicas", name, url)
        return Target(
            name=name,
            url=url.rstrip("/"),
            interval=interval,
            timeout=timeout,
            token_env=self.optional_text(raw, f"{where}.token_env"),
            admin_token_env=self.optional_text(raw, f"{where}.admin_token_env"),
            display_name=self.optional_text(raw, f"{where}.display_name"),
            group=self.optional_text(raw, f"{where}.group") or "Services",
            services=dict(services),
            replicas=replicas,
            expected_replicas=self.expected_replicas(raw, f"{where}.expected_replicas", replicas),
        )

    def expected_replicas(
        self, table: Mapping[str, object], where: str, replicas: tuple[str, ...]
    ) -> int | None:
        """``expected_replicas``: 1 to MAX_REPLICAS, on a target whose replicas come (at least
        in part) from ``dns:`` — a target's listed URLs are always all of its replicas."""
        if "expected_replicas" not in table:
            return None
        value = table["expected_replicas"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_REPLICAS:
            raise self.fail(
                where,
                f"must be a whole number from 1 to {MAX_REPLICAS}: how many replicas the "
                "target should have (e.g. the Deployment's replicas)",
                value,
            )
        if not any(dns_replica(entry) is not None for entry in replicas):
            raise self.fail(
                where,
                'counts the replicas a dns: entry finds; it needs replicas = ["dns:NAME:PORT"] '
                "(replicas listed by URL are always all there)",
                value,
            )
        return value

    def replicas(self, raw: object, where: str, target: str, url: str) -> tuple[str, ...]:
        """A target's ``replicas``: 1 to MAX_REPLICAS base URLs or ``dns:NAME:PORT`` entries,
        no two with the same key (the same host and port twice would be probed and stored as
        one replica); ``dns:`` entries only on an http:// target (``url``)."""
        if raw is None:
            return ()
        example = '["http://10.0.0.5:8000", "dns:questcity-api-headless:8000"]'
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_REPLICAS:
            raise self.fail(
                where,
                f"{target}'s replicas must be a list of 1 to {MAX_REPLICAS} entries, "
                f"e.g. {example}",
                raw if not isinstance(raw, list) else f"{len(raw)} entries",
            )
        entries: list[str] = []
        seen: dict[str, int] = {}
        for n, entry in enumerate(raw, start=1):
            if not isinstance(entry, str):
                raise self.fail(
                    where, f"{target}'s replica {n} must be a string, e.g. {example}", entry
                )
            entry = entry.strip()
            if entry.startswith(DNS_PREFIX):
                found = dns_replica(entry)
                if found is None:
                    raise self.fail(
                        where,
                        f"{target}'s replica {n} must be dns:NAME:PORT, NAME a host name and "
                        "PORT from 1 to 65535, e.g. "
                        '"dns:questcity-api-headless.default.svc.cluster.local:8000"',
                        entry,
                    )
                if urlsplit(url).scheme.lower() == "https":
                    # A discovered replica is probed at the target's scheme and the address
                    # DNS gave: https://10.0.0.5:8000 has no certificate that names it, and the
                    # operator token would go to whatever address the answer holds.
                    raise self.fail(
                        where,
                        f"{target}'s replica {n} is dns:, but the target's url is https: a "
                        "replica found by DNS is probed at https://ADDRESS:PORT, which no "
                        "certificate names, and would be sent the token whatever address DNS "
                        "returns; list the replicas' https:// URLs instead, or probe over "
                        "http:// inside the cluster network",
                        entry,
                    )
                key = f"{DNS_PREFIX}{found[0]}:{found[1]}"
                entry = key
            else:
                problem = _replica_url_problem(entry)
                if problem:
                    raise self.fail(
                        where,
                        f"{target}'s replica {n} must be an http:// or https:// base URL "
                        f'({problem}), e.g. "http://10.0.0.5:8000", or dns:NAME:PORT',
                        entry,
                    )
                entry = entry.rstrip("/")
                key = replica_key(entry)
            if key in seen:
                raise self.fail(
                    where,
                    f"{target}'s replicas {seen[key]} and {n} are the same replica ({key}); "
                    "name each once",
                    show=False,
                )
            seen[key] = n
            entries.append(entry)
        return tuple(entries)

    def nameservers(self, table: Mapping[str, object]) -> tuple[tuple[str, int], ...]:
        """``[dns] nameservers``: IP addresses, each with an optional port (53 by default)."""
        self.known_keys(table, "dns", {"nameservers"})
        raw = table.get("nameservers", [])
        where = "dns.nameservers"
        example = '["10.0.0.10", "127.0.0.1:5353", "[::1]:53"]'
        if not isinstance(raw, list) or len(raw) > 8:
            raise self.fail(where, f"must be a list of at most 8 addresses, e.g. {example}", raw)
        servers: list[tuple[str, int]] = []
        for entry in raw:
            server = _nameserver(entry) if isinstance(entry, str) else None
            if server is None:
                raise self.fail(
                    where,
                    f"each must be an IP address with an optional :PORT, e.g. {example}",
                    entry,
                )
            servers.append(server)
        return tuple(servers)

    def notifiers(self, raw: object) -> tuple[Notifier, ...]:
        if not isinstance(raw, list):
            raise self.fail("notifiers", "must be a list of [[notifiers]] tables", raw)
        result = []
        for n, item in enumerate(raw):
            where = f"notifiers[{n}]"
            if not isinstance(item, dict):
                raise self.fail(where, "must be a table", item)
            kind = item.get("type")
            repeat_every = (
                None
                if item.get("repeat_every") is None
                else self.positive(item, f"{where}.repeat_every", 0.0, least=60.0, most=_WEEK)
            )
            timeout = self.positive(item, f"{where}.timeout", 5.0, most=300)
            if kind == "log":
                self.known_keys(item, where, {"type", "repeat_every"})
                result.append(Notifier("log", repeat_every=repeat_every))
            elif kind == "webhook":
                self.known_keys(item, where, {"type", "url", "timeout", "repeat_every"})
                url = self.text(item, f"{where}.url")
                if not re.match(r"^https?://", url):
                    raise self.fail(f"{where}.url", "must be an http:// or https:// URL", url)
                result.append(Notifier("webhook", url, timeout, repeat_every=repeat_every))
            elif kind == "apprise":
                self.known_keys(item, where, {"type", "urls_env", "timeout", "repeat_every"})
                if "url" in item or "urls" in item:
                    raise self.fail(
                        f"{where}.urls_env",
                        "Apprise URLs hold secrets: name the environment variable that holds "
                        'them, e.g. urls_env = "QUESTCITY_APPRISE_URLS"',
                        show=False,
                    )
                urls_env = self.text(item, f"{where}.urls_env")
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,99}", urls_env):
                    raise self.fail(
                        f"{where}.urls_env", "must be an environment variable's name", urls_env
                    )
                result.append(
                    Notifier(
                        "apprise", timeout=timeout, urls_env=urls_env, repeat_every=repeat_every
                    )
                )
            else:
                raise self.fail(f"{where}.type", 'must be "log", "webhook" or "apprise"', kind)
        return tuple(result)


def _replica_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a replica's base URL, or None."""
    if not re.match(r"^https?://[^/\s]+", url):
        return "no scheme and host"
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        return "no user or password in it: tokens come from token_env"
    if parts.query or parts.fragment:
        return "no query or fragment"
    try:
        port = parts.port
    except ValueError:
        return "a port from 1 to 65535"
    if port == 0 or not parts.hostname:
        return "a host and a port from 1 to 65535"
    return None


def _nameserver(entry: str) -> tuple[str, int] | None:
    """(address, port) of ``10.0.0.10``, ``127.0.0.1:5353``, ``::1`` or ``[::1]:5353``."""
    entry = entry.strip()
    host, port = entry, str(DEFAULT_DNS_PORT)
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                return None
            port = rest[1:]
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return None
    return str(address), int(port)
