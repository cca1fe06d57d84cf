"""``[page]``, ``[smtp]`` and ``[subscriptions]`` of ``monitor.toml``: read by the monitor (it
sends subscribers' messages, with links to the page) and by the status page (it shows times in
the page's zone and takes subscriptions). Like :mod:`monitor.store.settings`, a bad value raises
an error naming its key, which each reader turns into its own message with the file's line.

Secrets (the SMTP password, the key that signs subscribers' links) are never in the file: each is
named by an environment variable (``password_env``, ``secret_env``)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_PAGE_URL = "http://127.0.0.1:8082"
MIN_SECRET = 32
"""Bytes (characters) a signing secret must have at least."""
SMTP_SECURITY = ("starttls", "tls", "none")

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_ADDRESS = re.compile(r"[^@\s<>\"]{1,64}@[A-Za-z0-9.-]{1,253}")


class PublicSettingsError(ValueError):
    """A value of ``[page]``, ``[smtp]`` or ``[subscriptions]`` the monitor cannot use."""

    def __init__(self, key: str, problem: str, value: object = None) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem
        self.value = value


@dataclass(frozen=True, slots=True)
class PageSettings:
    url: str = DEFAULT_PAGE_URL
    """Where the public reaches the status page: links in the JSON, the feed and e-mails."""
    name: str = "QuestCity"
    timezone: str = "UTC"
    """The IANA zone the page shows times in (``Europe/Moscow``), always named beside them."""
    refresh: int = 60
    """Seconds after which the page reloads itself (``<meta http-equiv=refresh>``); 0: never."""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    sender: str
    """The ``From`` address (``from`` in the file)."""
    port: int = 587
    security: str = "starttls"
    """``starttls`` (upgrade on 587), ``tls`` (implicit, 465) or ``none`` (a local relay)."""
    username: str | None = None
    password_env: str | None = None
    timeout: float = 10.0

    def password(self, environ: Mapping[str, str] | None = None) -> str | None:
        return _env(self.password_env, environ)


@dataclass(frozen=True, slots=True)
class SubscriptionSettings:
    enabled: bool = False
    secret_env: str = "QUESTCITY_SUBSCRIPTION_SECRET"
    """The variable holding the key that signs confirmation and unsubscribe links (at least
    :data:`MIN_SECRET` characters); without it subscriptions stay off."""
    email: bool = True
    webhooks: bool = True
    allow_private_webhooks: bool = False
    """Deliver webhooks to loopback and private addresses (a test rig, a LAN-only page); off,
    a subscriber's URL can never make the monitor reach inside its own network."""
    max_pending: int = 1000
    """Unconfirmed subscriptions waiting at once; beyond it new ones are refused for a while."""
    per_client_per_hour: int = 5
    """Subscription requests one client address may make in an hour."""
    resend_after: float = 3600.0
    """Seconds before one address can be sent another confirmation request."""
    confirm_within: float = 172800.0
    """Seconds a confirmation link stays valid (and an unconfirmed subscription is kept)."""

    def secret(self, environ: Mapping[str, str] | None = None) -> bytes | None:
        value = _env(self.secret_env, environ)
        return value.encode() if value is not None and len(value) >= MIN_SECRET else None


@dataclass(frozen=True, slots=True)
class PublicSettings:
    page: PageSettings = field(default_factory=PageSettings)
    smtp: SmtpSettings | None = None
    subscriptions: SubscriptionSettings = field(default_factory=SubscriptionSettings)


def _env(name: str | None, environ: Mapping[str, str] | None) -> str | None:
    if not name:
        return None
    value = (os.environ if environ is None else environ).get(name, "").strip()
    return value or None


def public_settings(document: Mapping[str, object]) -> PublicSettings:
    """The three tables of a parsed ``monitor.toml`` (missing ones take their defaults)."""
    page = _Table(document, "page", {"url", "name", "timezone", "refresh"})
    smtp_table = document.get("smtp")
    subscriptions = _Table(
        document,
        "subscriptions",
        {
            "enabled",
            "secret_env",
            "email",
            "webhooks",
            "allow_private_webhooks",
            "max_pending",
            "per_client_per_hour",
            "resend_after",
            "confirm_within",
        },
    )
    settings = PublicSettings(
        page=PageSettings(
            url=page.url("url", DEFAULT_PAGE_URL),
            name=page.text("name", "QuestCity", most=100),
            timezone=page.zone("timezone", "UTC"),
            refresh=int(page.number("refresh", 60, least=0, most=3600)),
        ),
        smtp=None if smtp_table is None else _smtp(_Table(document, "smtp", _SMTP_KEYS)),
        subscriptions=SubscriptionSettings(
            enabled=subscriptions.flag("enabled", False),
            secret_env=subscriptions.env_name("secret_env", "QUESTCITY_SUBSCRIPTION_SECRET"),
            email=subscriptions.flag("email", True),
            webhooks=subscriptions.flag("webhooks", True),
            allow_private_webhooks=subscriptions.flag("allow_private_webhooks", False),
            max_pending=int(subscriptions.number("max_pending", 1000, least=1, most=1_000_000)),
            per_client_per_hour=int(
                subscriptions.number("per_client_per_hour", 5, least=1, most=10_000)
            ),
            resend_after=subscriptions.number("resend_after", 3600.0, least=60, most=86400 * 7),
            confirm_within=subscriptions.number(
                "confirm_within", 172800.0, least=600, most=86400 * 30
            ),
        ),
    )
    chosen = settings.subscriptions
    if chosen.enabled and chosen.email and settings.smtp is None:
        raise PublicSettingsError(
            "subscriptions.email",
            "e-mail subscriptions need an [smtp] table (host, from); add one, or set "
            "email = false to take webhook subscriptions only",
        )
    if chosen.enabled and not (chosen.email or chosen.webhooks):
        raise PublicSettingsError(
            "subscriptions.enabled", "subscriptions are on but both email and webhooks are off"
        )
    return settings


_SMTP_KEYS = {"host", "port", "from", "security", "username", "password_env", "timeout"}


def _smtp(table: _Table) -> SmtpSettings:
    if "password" in table.raw:
        raise PublicSettingsError(
            "smtp.password",
            "the password is never kept in the file: put it in an environment variable and "
            "name that with password_env",
        )
    table.known()
    security = table.text("security", "starttls", most=10)
    if security not in SMTP_SECURITY:
        raise PublicSettingsError(
            "smtp.security", f"must be one of {', '.join(SMTP_SECURITY)}", security
        )
    sender = table.text("from", None, most=320)
    if not _ADDRESS.fullmatch(sender):
        raise PublicSettingsError("smtp.from", "must be an e-mail address", sender)
    username = table.raw.get("username")
    if username is not None and (not isinstance(username, str) or not 0 < len(username) <= 320):
        raise PublicSettingsError("smtp.username", "must be a non-empty string", username)
    default_port = 465 if security == "tls" else 587
    return SmtpSettings(
        host=table.text("host", None, most=253),
        sender=sender,
        port=int(table.number("port", default_port, least=1, most=65535)),
        security=security,
        username=username,
        password_env=table.env_name("password_env", None) if "password_env" in table.raw else None,
        timeout=table.number("timeout", 10.0, least=0.1, most=120),
    )


class _Table:
    def __init__(self, document: Mapping[str, object], name: str, keys: set[str]) -> None:
        raw = document.get(name, {})
        if not isinstance(raw, Mapping):
            raise PublicSettingsError(name, "must be a table", raw)
        self.name = name
        self.raw: Mapping[str, object] = raw
        self.keys = keys
        if name != "smtp":  # [smtp] checks "password" first, for a better message
            self.known()

    def known(self) -> None:
        for key in self.raw:
            if key not in self.keys:
                raise PublicSettingsError(
                    f"{self.name}.{key}",
                    f"unknown key; expected one of {', '.join(sorted(self.keys))}",
                )

    def _where(self, key: str) -> str:
        return f"{self.name}.{key}"

    def text(self, key: str, default: str | None, *, most: int) -> str:
        value = self.raw.get(key, default)
        if value is None:
            raise PublicSettingsError(self._where(key), "is required")
        if not isinstance(value, str) or not value.strip() or len(value) > most:
            raise PublicSettingsError(
                self._where(key), f"must be a non-empty string of at most {most} characters", value
            )
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise PublicSettingsError(self._where(key), "must not hold control characters", value)
        return value.strip()

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise PublicSettingsError(self._where(key), "must be true or false", value)
        return value

    def number(self, key: str, default: float, *, least: float, most: float) -> float:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise PublicSettingsError(self._where(key), "must be a number", value)
        if not least <= value <= most:
            raise PublicSettingsError(
                self._where(key), f"must be from {least:g} to {most:g}", value
            )
        return float(value)

    def env_name(self, key: str, default: str | None) -> str:
        value = self.raw.get(key, default)
        if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
            raise PublicSettingsError(
                self._where(key), "must be the name of an environment variable", value
            )
        return value

    def url(self, key: str, default: str) -> str:
        value = self.text(key, default, most=2000)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PublicSettingsError(
                self._where(key), "must be an http:// or https:// URL with a host", value
            )
        if parts.username or parts.password or parts.query or parts.fragment:
            raise PublicSettingsError(
                self._where(key), "must have no user, query or fragment", value
            )
        return value.rstrip("/")

    def zone(self, key: str, default: str) -> str:
        value = self.text(key, default, most=64)
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise PublicSettingsError(
                self._where(key), "must be an IANA time zone, like UTC or Europe/Moscow", value
            ) from None
        return value
