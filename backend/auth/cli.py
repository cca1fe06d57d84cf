"""``questcity token``: mint a staff token signed with the backend's key (ARCHITECTURE §3).

Only the staff roles are offered here; players get their tokens from ``POST /api/v1/auth/token``.
Arguments are checked before the keys directory is touched, so a typo creates nothing on disk.
"""

from __future__ import annotations

from datetime import UTC, datetime

from backend.auth.keys import load_or_create_keys
from backend.auth.tokens import Role, TokenService
from backend.settings import Settings

CLI_ROLES = (Role.OPERATOR, Role.ADMIN)
DEFAULT_TTL = 3600
MAX_TTL = 366 * 24 * 3600
"""A year and a day: long enough for a monitor's token, short enough that a leak expires."""
MONITOR_TTL = 90 * 24 * 3600
"""What the notes suggest for a monitor's token (as the deploy files mint it)."""
MONITOR_WARNING = 3 * 24 * 3600
"""The monitor's default ``alerts.token_expiry_warning``: its token must outlive this, or it
raises ``monitor_token_expiring`` from its first check (restated: the backend never imports the
monitor)."""
DEFAULT_SUBJECT = "questcity-cli"
MAX_SUBJECT_LENGTH = 255


def mint_token_command(settings: Settings, role: str, ttl: int, subject: str | None) -> str:
    """A token for ``role`` valid ``ttl`` seconds; ValueError names the bad argument.

    May raise :class:`backend.auth.keys.KeyFileError` when the key files can't be used.
    """
    allowed = " or ".join(r.value for r in CLI_ROLES)
    if role not in {r.value for r in CLI_ROLES}:
        raise ValueError(f"--role must be {allowed}, not {role!r}")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL:
        raise ValueError(
            f"--ttl must be a whole number of seconds from 1 to {MAX_TTL}, not {ttl!r}"
        )
    sub = DEFAULT_SUBJECT if subject is None else subject.strip()
    if not sub or len(sub) > MAX_SUBJECT_LENGTH:
        raise ValueError(f"--subject must be 1 to {MAX_SUBJECT_LENGTH} characters")
    keys = load_or_create_keys(settings.keys_dir)
    return TokenService(keys, issuer=settings.token_issuer).mint(sub, Role(role), ttl)


def expiry_note(role: str, ttl: int, now: float) -> str:
    """What ``questcity token`` says on stderr beside the token: when it expires, and for an
    operator token short enough to trouble a monitor (the default hour among them), that the
    monitor would go blind when it does and how to mint one that lasts."""
    expires = datetime.fromtimestamp(now + ttl, UTC).strftime("%Y-%m-%d %H:%M UTC")
    note = f"questcity token: expires {expires} (in {_span(ttl)})"
    if role == Role.OPERATOR.value and ttl <= MONITOR_WARNING:
        note += (
            "; for a monitor (token_env) that is too short: it loses the detailed health (no "
            "breaker, pool or S3 alerts) when the token expires, and raises "
            "monitor_token_expiring from its first check — mint its token with "
            f"--ttl {MONITOR_TTL} ({MONITOR_TTL // 86400} days)"
        )
    return note


def _span(seconds: int) -> str:
    for unit, name in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if (seconds >= unit and seconds % unit == 0) or seconds >= 2 * unit:
            count = seconds // unit
            return f"{count} {name}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"
