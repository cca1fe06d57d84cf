"""Backend settings, read from the environment (and a ``.env`` file) once, at the composition root.

Names and defaults are ARCHITECTURE §4. A bad value is refused at start-up with a message that
names the variable, what is wrong, and what to write instead.
"""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "QUESTCITY_"

INSTANCE_ID_MAX = 100
# It leaves the process (/detailed, log lines, the monitor's store and screen): nothing in it may
# be markup, a path, a line break or a shell word.
_INSTANCE_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{INSTANCE_ID_MAX}}}")
_INSTANCE_ID_RULE = (
    f"use 1 to {INSTANCE_ID_MAX} letters, digits, '.', '_', ':' or '-', for example api-2"
)


class SettingsError(ValueError):
    """A setting has a value the backend cannot use."""


def default_instance_id(hostname: str | None = None, pid: int | None = None) -> str:
    """``<hostname>-<pid>``, made to fit the instance id's rule whatever the host is called:
    characters outside the safe set become ``-`` and a long host name is cut, never the pid."""
    host = socket.gethostname() if hostname is None else hostname
    suffix = f"-{os.getpid() if pid is None else pid}"
    host = re.sub(r"[^A-Za-z0-9._:-]", "-", host)[: INSTANCE_ID_MAX - len(suffix)] or "backend"
    return host + suffix


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///./var/questcity.db"
    s3_endpoint_url: str | None = None
    s3_bucket: str = "questcity"
    s3_access_key: str | None = field(default=None, repr=False)
    s3_secret_key: str | None = field(default=None, repr=False)
    s3_region: str = "us-east-1"
    keys_dir: Path = Path("./var/keys")
    health_interval: float = 10.0
    health_details: str = "authenticated"
    """``authenticated`` (operator/admin token) or ``public``: who may read /detailed."""
    db_pool_size: int = 20
    db_max_overflow: int = 30
    db_pool_timeout: float = 30.0
    db_pool_recycle: int = 3600
    db_timeout: float = 10.0
    """Bound on each database call (the seed's breaker ``timeout``); a call past it is a failure."""
    s3_timeout: float = 20.0
    """Bound on each S3 call; a call past it is a failure."""
    request_timeout: float = 10.0
    """The budget of one request, in seconds from its arrival: no request waits longer than this
    for its dependencies. Every retry, call timeout and pool wait inside it is cut to what is left
    (a retry wait that would reach it is not taken), and a request whose budget is spent answers
    503 with ``Retry-After`` naming the service. Background work (health checks, start-up,
    removing replaced images) keeps the longer deadlines of its policies."""
    metrics_public: bool = True
    """Whether /metrics answers without a token (scrapers usually sit inside the network)."""
    token_issuer: str = "questcity"
    access_token_ttl: int = 3600
    max_upload_bytes: int = 5 * 1024 * 1024
    shutdown_grace: float = 10.0
    """Seconds in-flight requests get to finish once the server stops accepting new ones."""
    drain_delay: float = 0.0
    """Seconds between SIGTERM (readiness turns 503) and closing the listener, so a load balancer
    stops sending traffic first (5 s or so behind Kubernetes; 0 on a laptop)."""
    header_timeout: float = 10.0
    """Seconds a client may take to send a request's headers; slower connections are closed."""
    keepalive_timeout: int = 5
    """Seconds an idle kept-alive connection stays open."""
    max_connections: int = 1024
    """Connections held at once. Beyond it the oldest idle one is closed to make room, or the new
    one gets a 503 when all are busy; lowered to fit the process's open-file limit."""
    instance_id: str = field(default_factory=default_instance_id)
    """This replica's name in ``/detailed``, the logs and the monitor (``<hostname>-<pid>`` by
    default: a container's or pod's host name is already its own). It leaves the process, so
    it is held to a safe set of characters and a length."""

    @property
    def s3_configured(self) -> bool:
        return bool(self.s3_endpoint_url)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, env_file: Path | None = Path(".env")
    ) -> Settings:
        """Settings from ``environ`` (default: the process environment) over a ``.env`` file."""
        values: dict[str, str] = {}
        if env_file is not None and env_file.is_file():
            values.update(_read_env_file(env_file))
        values.update(os.environ if environ is None else environ)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> Settings:
        def get(name: str) -> str | None:
            value = values.get(PREFIX + name)
            return value if value not in (None, "") else None

        defaults = cls()
        kwargs: dict[str, object] = {}
        for name, parse in _PARSERS.items():
            raw = get(name.upper())
            if raw is not None:
                try:
                    kwargs[name] = parse(raw)
                except ValueError as exc:
                    raise SettingsError(f"{PREFIX}{name.upper()}={raw!r}: {exc}") from None
        settings = cls(**{**{f: getattr(defaults, f) for f in _PARSERS}, **kwargs})
        settings.validate()
        return settings

    def validate(self) -> None:
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise SettingsError(
                f"{PREFIX}DATABASE_URL must start with sqlite+aiosqlite:// or "
                "postgresql+asyncpg:// (the async drivers the backend ships with)"
            )
        if self.health_details not in ("authenticated", "public"):
            raise SettingsError(
                f"{PREFIX}HEALTH_DETAILS={self.health_details!r}: use 'authenticated' or 'public'"
            )
        if self.s3_endpoint_url and not self.s3_endpoint_url.startswith(("http://", "https://")):
            raise SettingsError(
                f"{PREFIX}S3_ENDPOINT_URL must be an http:// or https:// URL, "
                "for example http://127.0.0.1:9000"
            )
        if self.header_timeout == float("inf"):
            raise SettingsError(
                f"{PREFIX}HEADER_TIMEOUT=inf: give a number of seconds, for example 10"
            )
        if not _INSTANCE_ID.fullmatch(self.instance_id):
            raise SettingsError(f"{PREFIX}INSTANCE_ID={self.instance_id!r}: {_INSTANCE_ID_RULE}")
        if self.s3_endpoint_url and not (self.s3_access_key and self.s3_secret_key):
            raise SettingsError(
                f"{PREFIX}S3_ENDPOINT_URL is set, so {PREFIX}S3_ACCESS_KEY and "
                f"{PREFIX}S3_SECRET_KEY are needed too"
            )


def _instance_id(raw: str) -> str:
    value = raw.strip()
    if not _INSTANCE_ID.fullmatch(value):
        raise ValueError(_INSTANCE_ID_RULE)
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a number greater than 0")
    return value


def _seconds(raw: str) -> float:
    problem = "must be a number of seconds greater than 0, for example 10"
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(problem) from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(problem)
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError("must be a number, 0 or more")
    return value


def _non_negative_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("must be a whole number") from None
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _positive_int(raw: str) -> int:
    value = _non_negative_int(raw)
    if value == 0:
        raise ValueError("must be 1 or more")
    return value


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _text(raw: str) -> str:
    return raw.strip()


_PARSERS: dict[str, Callable[[str], object]] = {
    "database_url": _text,
    "s3_endpoint_url": _text,
    "s3_bucket": _text,
    "s3_access_key": _text,
    "s3_secret_key": _text,
    "s3_region": _text,
    "keys_dir": Path,
    "health_interval": _positive_float,
    "health_details": _text,
    "db_pool_size": _positive_int,
    "db_max_overflow": _non_negative_int,
    "db_pool_timeout": _positive_float,
    "db_pool_recycle": _positive_int,
    "db_timeout": _positive_float,
    "s3_timeout": _positive_float,
    "request_timeout": _seconds,
    "metrics_public": _boolean,
    "token_issuer": _text,
    "access_token_ttl": _positive_int,
    "max_upload_bytes": _positive_int,
    "shutdown_grace": _positive_float,
    "drain_delay": _non_negative_float,
    "header_timeout": _positive_float,
    "keepalive_timeout": _positive_int,
    "max_connections": _positive_int,
    "instance_id": _instance_id,
}


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export ") :]
        key, sep, value = stripped.partition("=")
        if not sep:
            raise SettingsError(f"{path}:{number}: expected NAME=value, got {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values
