"""What ``questcity up`` (:mod:`questcity.up`) configures the stack's processes with: the
backend's environment, the tokens the monitor and the on-call TUI present, and the
``monitor.toml`` it writes for the monitor, the status page and the TUI.

Plain values in, plain values out: the stack starts the processes; this module only says what
they are told.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from questcity.embedded.s3 import S3Server

TOKEN_TTL = 30 * 24 * 3600
"""Seconds the minted tokens last: a month, longer than any local stack runs."""


def backend_env(
    database_url: str, s3_url: str, s3: S3Server, *, keys_dir: Path, health_interval: float
) -> dict[str, str]:
    """The backend's settings (``QUESTCITY_*``, ARCHITECTURE §4) for the stack's database and S3
    server, reached through their fault proxies at ``database_url`` and ``s3_url``."""
    return {
        "QUESTCITY_DATABASE_URL": database_url,
        "QUESTCITY_S3_ENDPOINT_URL": s3_url,
        "QUESTCITY_S3_ACCESS_KEY": s3.access_key,
        "QUESTCITY_S3_SECRET_KEY": s3.secret_key,
        "QUESTCITY_S3_REGION": s3.region,
        "QUESTCITY_KEYS_DIR": str(keys_dir),
        "QUESTCITY_HEALTH_INTERVAL": str(health_interval),
        "QUESTCITY_DB_TIMEOUT": "2",
        "QUESTCITY_S3_TIMEOUT": "2",
    }


def mint_tokens(env: dict[str, str]) -> dict[str, str]:
    """Tokens signed with the key of the backend ``env`` configures: an operator's for the
    monitor, an admin's for the on-call TUI (breaker resets); as the variables ``monitor.toml``
    names them by."""
    from backend.auth import mint_token_command
    from backend.settings import Settings

    settings = Settings.from_mapping(env)
    return {
        "QUESTCITY_MONITOR_TOKEN": mint_token_command(
            settings, "operator", TOKEN_TTL, "questcity-up-monitor"
        ),
        "QUESTCITY_ADMIN_TOKEN": mint_token_command(
            settings, "admin", TOKEN_TTL, "questcity-up-on-call"
        ),
    }


SUBSCRIPTION_SECRET_ENV = "QUESTCITY_SUBSCRIPTION_SECRET"
"""The variable the monitor and the status page read the subscriber links' signing key from
(``[subscriptions] secret_env`` in the ``monitor.toml`` written here)."""
SUBSCRIPTION_SECRET_FILE = "subscription-secret"
_SECRET_BYTES = 48
"""Random bytes in a new key (64 characters of URL-safe base64; the settings want ≥ 32)."""


def subscription_secret(directory: Path) -> str:
    """The stack's key for signing subscribers' confirm and unsubscribe links: read from
    ``directory/subscription-secret``, or made there once (mode 0600) and reused by later runs, so
    links sent by one run still work after a restart. Never printed or logged by ``up``.

    A file that is not the stack's own (a symlink, another owner's, too short, readable by
    others) is not trusted: it is replaced by a new key (links signed with the old one lapse)."""
    path = directory / SUBSCRIPTION_SECRET_FILE
    found = _read_secret(path)
    if found is not None:
        return found
    key = secrets.token_urlsafe(_SECRET_BYTES)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(key + "\n")
    return key


def _read_secret(path: Path) -> str | None:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None  # absent, or a symlink (ELOOP): made anew
    with os.fdopen(descriptor, "rb") as file:
        facts = os.fstat(file.fileno())
        if not stat.S_ISREG(facts.st_mode) or facts.st_mode & 0o077 or facts.st_uid != os.getuid():
            return None
        text = file.read(1024).decode("ascii", errors="replace").strip()
    usable = len(text) >= 32 and all(c.isalnum() or c in "-_" for c in text)
    return text if usable else None


CHECK_DATABASE_ENV = "QUESTCITY_CHECK_DATABASE_URL"
"""The variable the ``postgres`` check reads the stack's database URL from (``url_env``): the
backend's database, through its fault proxy, as a plain ``postgresql://`` URL."""
CHECK_INTERVAL = 10.0
"""Seconds between runs of the stack's ``[[checks]]``: the tour shows them move, while the
health API's target (every ``--health-interval``) stays the one watched closest."""
CERT_CHECK_INTERVAL = 15.0
CHECK_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class StackChecks:
    """What the stack's ``[[checks]]`` watch (:func:`write_monitor_config`)."""

    front_door_port: int
    """The TLS front door (:mod:`questcity.embedded.front_door`) on 127.0.0.1."""
    ca_file: Path
    """Its certificate, the CA file the checks trust (absolute: the file is read wherever the
    monitor runs from)."""
    s3_url: str | None = None
    """SeaweedFS's S3 endpoint, as the backend reaches it (through its fault proxy); None: not
    started yet, no ``s3`` check."""
    postgres: bool = False
    """Whether the stack runs PostgreSQL: the ``postgres`` check, its URL in
    :data:`CHECK_DATABASE_ENV`."""


DEFAULT_STORE = "sqlite:///./var/monitor.db"
"""One monitor's store: a SQLite file beside the stack."""

_MARK = (
    "# Written by questcity up (sha256 {digest}); edit freely, or delete it to have it rewritten"
)
_MARK_PATTERN = re.compile(r"# Written by questcity up \(sha256 ([0-9a-f]{64})\)")


@dataclass(frozen=True)
class PlacedConfig:
    path: Path
    """The ``monitor.toml`` the stack's processes are given."""
    kept: Path | None = None
    """The user's own ``monitor.toml``, left as it was (``path`` is then the stack's own)."""


def place_monitor_config(
    directory: Path,
    run_dir: Path,
    *,
    backend_port: int,
    interval: float,
    replica_ports: Sequence[int] = (),
    storage_url: str = DEFAULT_STORE,
    page_url: str | None = None,
    checks: StackChecks | None = None,
) -> PlacedConfig:
    """Write the stack's ``monitor.toml`` as ``directory/monitor.toml``, where every command
    looks by default (ARCHITECTURE §3), unless a file there is the user's: then it stays byte
    for byte and the stack's goes to ``run_dir/monitor.toml`` instead.

    A file is ``up``'s own only if its first line is the mark ``up`` writes and the sha256 there
    matches the rest of the file: a file ``up`` wrote and nobody changed since. Such a file is
    rewritten (the ports may differ from the last run). Anything else is the user's, an edited
    generated file included: an edit is work, and rewriting it would throw that work away
    without a word, while keeping it costs one printed line and a ``--config``. To have an
    edited file rewritten, delete it (the mark says so).

    ``replica_ports``, ``storage_url``, ``page_url`` and ``checks``: as
    :func:`write_monitor_config` takes them.
    """
    write = functools.partial(
        write_monitor_config,
        backend_port=backend_port,
        interval=interval,
        replica_ports=replica_ports,
        storage_url=storage_url,
        page_url=page_url,
        checks=checks,
    )
    own = directory / "monitor.toml"
    if own.exists() or own.is_symlink():
        try:
            ours = _written_by_up(own.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            ours = False
        if not ours:
            return PlacedConfig(write(run_dir / "monitor.toml"), kept=own)
    return PlacedConfig(write(own))


def _written_by_up(text: str) -> bool:
    first, _, rest = text.partition("\n")
    mark = _MARK_PATTERN.fullmatch(first.split(";", 1)[0])
    return mark is not None and mark.group(1) == _digest(rest)


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def write_monitor_config(
    path: Path,
    *,
    backend_port: int,
    interval: float,
    replica_ports: Sequence[int] = (),
    storage_url: str = DEFAULT_STORE,
    page_url: str | None = None,
    checks: StackChecks | None = None,
) -> Path:
    """``monitor.toml`` for watching the stack's backend on ``backend_port`` every
    ``interval`` seconds, written at ``path`` under the mark that makes it ``up``'s own.

    With more than one of ``replica_ports`` the target lists them all as its ``replicas`` (its
    ``url`` stays the first one's: what a single-URL reader of the file still finds);
    ``storage_url`` is the store every monitor, the status page and the TUI share.

    ``page_url``: the status page the stack serves, as ``[page] url`` (its links in e-mails,
    webhooks and feeds), times in UTC; subscriptions are on for webhooks only (no SMTP server
    locally), their links signed with the key in :data:`SUBSCRIPTION_SECRET_ENV`."""
    public = ""
    if page_url is not None:
        public = f"""
[page]
url = {_toml_string(page_url)}
timezone = "UTC"

[subscriptions]
enabled = true
email = false
webhooks = true
secret_env = "{SUBSCRIPTION_SECRET_ENV}"
"""
    replicas = ""
    if len(replica_ports) > 1:
        urls = ", ".join(_toml_string(f"http://127.0.0.1:{port}") for port in replica_ports)
        replicas = f"replicas = [{urls}]\n"
    body = f"""[storage]
url = {_toml_string(storage_url)}

[incidents]
open_after = 2
resolve_after = 2

[[targets]]
name = "questcity-api"
url = "http://127.0.0.1:{backend_port}"
{replicas}interval = {interval}
timeout = {min(interval * 0.75, 1.5)}
token_env = "QUESTCITY_MONITOR_TOKEN"
admin_token_env = "QUESTCITY_ADMIN_TOKEN"
display_name = "QuestCity API"
group = "QuestCity"
services = {{ database = "Quests and accounts", s3 = "Photos and avatars" }}
{checks_toml(checks) if checks is not None else ""}{public}"""
    path.write_text(_MARK.format(digest=_digest(body)) + "\n" + body, encoding="utf-8")
    return path


def checks_toml(checks: StackChecks) -> str:
    """The stack's ``[[checks]]``, each a TOML table (ARCHITECTURE §9, DESIGN §9):

    - ``front-door`` (public, beside the API on the status page): ``/api/v1/health/live``
      through the TLS front door, as a player's app reaches the backend; the backend answers
      ``{"status": "alive"}`` there (``backend/api/health.py``), the door a 502 when it cannot
      reach the backend (``questcity chaos backend down``).
    - ``front-door-cert``: the door's certificate, valid for 127.0.0.1 and 14 days more.
    - ``postgres`` (with PostgreSQL only): connect and ``SELECT 1`` with the backend's role.
    - ``s3``: SeaweedFS's S3 endpoint answers; an anonymous ``GET /`` is refused (403) by a
      healthy one, so anything below 500 is an answer.

    Every one but the front door is for operators only (``public = false``): players are told
    about the door, not about what stands behind it."""
    ca_file = _toml_string(str(checks.ca_file))
    door = f"https://127.0.0.1:{checks.front_door_port}"
    every = f"interval = {CHECK_INTERVAL}\ntimeout = {CHECK_TIMEOUT}"
    tables = [
        f"""
[[checks]]
name = "front-door"
kind = "http"
url = {_toml_string(door + "/api/v1/health/live")}
ca_file = {ca_file}
conditions = ["[STATUS] == 200", "[BODY].status == alive", "[RESPONSE_TIME] < 500"]
{every}
public = true
display_name = "Front door"
group = "QuestCity"
""",
        f"""
[[checks]]
name = "front-door-cert"
kind = "tls"
host = "127.0.0.1"
port = {checks.front_door_port}
ca_file = {ca_file}
min_days = 14
interval = {CERT_CHECK_INTERVAL}
timeout = {CHECK_TIMEOUT}
public = false
display_name = "Front door certificate"
group = "QuestCity"
""",
    ]
    if checks.postgres:
        tables.append(
            f"""
[[checks]]
name = "postgres"
kind = "postgres"
url_env = "{CHECK_DATABASE_ENV}"
{every}
public = false
display_name = "PostgreSQL"
group = "Dependencies"
"""
        )
    if checks.s3_url is not None:
        tables.append(
            f"""
[[checks]]
name = "s3"
kind = "http"
url = {_toml_string(checks.s3_url.rstrip("/") + "/")}
conditions = ["[STATUS] < 500"]
{every}
public = false
display_name = "S3 (SeaweedFS)"
group = "Dependencies"
"""
        )
    return "".join(tables)


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string (JSON's escapes are TOML's for these characters)."""
    return json.dumps(text, ensure_ascii=True)
