"""``questcity token``: mint a staff token signed with the backend's key (ARCHITECTURE §3).

Only the staff roles are offered here; players get their tokens from ``POST /api/v1/auth/token``.
Arguments are checked before the keys directory is touched, so a typo creates nothing on disk.
"""

from __future__ import annotations

from backend.auth.keys import load_or_create_keys
from backend.auth.tokens import Role, TokenService
from backend.settings import Settings

CLI_ROLES = (Role.OPERATOR, Role.ADMIN)
DEFAULT_TTL = 3600
MAX_TTL = 366 * 24 * 3600
"""A year and a day: long enough for a monitor's token, short enough that a leak expires."""
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
