"""JWT access tokens: RS256 only; claims ``sub``, ``role``, ``exp``, ``iat``, ``iss``.

The claims are ARCHITECTURE §6.

Verification pins the algorithm, so neither ``alg: none`` nor an HS256 token "signed" with our
public key as the HMAC secret (the classic key-confusion attack) is ever considered. PyJWT checks
the signature, the issuer and that the claims are present; expiry is checked here against the
injected :class:`~shared.resilience.Clock` (the app's own, from ``create_app``), because PyJWT only
knows the system's wall clock and tests must not sleep. ``exp``, ``iat`` and ``nbf`` are seconds
since the epoch by definition (RFC 7519), so this is the one decision taken on ``clock.wall()``:
a token is judged against the time the minting machine wrote into it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import jwt

from backend.auth.keys import KeyPair
from shared.resilience import SYSTEM_CLOCK, Clock

ALGORITHM = "RS256"
DEFAULT_LEEWAY = 30.0
"""Seconds of clock skew forgiven between the minting and the verifying machine."""
MAX_TOKEN_LENGTH = 8192
"""Ours are ~600 characters; anything far longer is refused before any parsing or crypto."""

_REQUIRED_CLAIMS = ["exp", "iat", "iss", "sub", "role"]


class Role(StrEnum):
    PLAYER = "player"
    """An ordinary user's access token (``POST /api/v1/auth/token``)."""
    OPERATOR = "operator"
    """Reads the detailed health API (the monitor's token)."""
    ADMIN = "admin"
    """Everything an operator may do, plus breaker resets."""

    def satisfies(self, required: Role) -> bool:
        """Whether a token with this role may do what ``required`` may do."""
        return self is required or required in _IMPLIED_ROLES.get(self, frozenset())


# Admin is a superset of operator only: staff tokens are not user accounts, so neither one
# implies player (a player route would find no user behind an admin's ``sub``).
_IMPLIED_ROLES: dict[Role, frozenset[Role]] = {Role.ADMIN: frozenset({Role.OPERATOR})}


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    role: Role
    exp: int
    iat: int
    iss: str


class InvalidTokenError(Exception):
    """A token was refused; ``reason`` is short, fixed text that is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenService:
    """Mints and verifies the backend's tokens with one key pair."""

    def __init__(
        self,
        keys: KeyPair,
        *,
        issuer: str = "questcity",
        clock: Clock = SYSTEM_CLOCK,
        leeway: float = DEFAULT_LEEWAY,
    ) -> None:
        if not issuer:
            raise ValueError("issuer must not be empty")
        self._keys = keys
        self._issuer = issuer
        self._clock = clock
        self._leeway = leeway

    @property
    def issuer(self) -> str:
        return self._issuer

    def derive_secret(self, purpose: bytes) -> bytes:
        """A 32-byte secret for ``purpose`` (an HMAC key), derived from the private key: the same
        on every replica sharing the key pair, never the key itself."""
        return hmac.new(self._keys.private_pem, purpose, hashlib.sha256).digest()

    def mint(self, sub: str, role: Role, ttl: int) -> str:
        """A signed token for ``sub`` with ``role``, valid for ``ttl`` seconds from now."""
        if not isinstance(sub, str) or not sub:
            raise ValueError("sub must be a non-empty string")
        role = Role(role)  # a plain "admin" works too; anything else is a ValueError
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
            raise ValueError(f"ttl must be a whole number of seconds above 0, not {ttl!r}")
        now = int(self._clock.wall())
        payload = {
            "iss": self._issuer,
            "sub": sub,
            "role": role.value,
            "iat": now,
            "exp": now + ttl,
        }
        return jwt.encode(payload, self._keys.private_key, algorithm=ALGORITHM)

    def verify(self, token: str) -> Claims:
        """The claims of a valid token; :class:`InvalidTokenError` otherwise."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidTokenError("malformed token")
        try:
            payload = jwt.decode(
                token,
                self._keys.public_key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                # Times are checked in _claims against the injected clock, not PyJWT's wall clock.
                options={
                    "require": _REQUIRED_CLAIMS,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            # ``from None``: the reason is all a caller needs, and nothing of the token leaks
            # into logged tracebacks.
            raise InvalidTokenError(_public_reason(exc)) from None
        except (ValueError, TypeError):
            # PyJWT wraps its parse errors, but a hostile token must never become a 500.
            raise InvalidTokenError("malformed token") from None
        return self._claims(payload)

    def _claims(self, payload: Mapping[str, object]) -> Claims:
        sub = payload["sub"]
        if not isinstance(sub, str) or not sub:
            raise InvalidTokenError("invalid subject")
        raw_role = payload["role"]
        try:
            role = Role(raw_role) if isinstance(raw_role, str) else None
        except ValueError:
            role = None
        if role is None:
            raise InvalidTokenError("unknown role")
        exp = _numeric_date(payload["exp"])
        iat = _numeric_date(payload["iat"])
        now = self._clock.wall()
        if exp <= now - self._leeway:
            raise InvalidTokenError("token expired")
        if iat > now + self._leeway:
            raise InvalidTokenError("token not yet valid")
        if "nbf" in payload and _numeric_date(payload["nbf"]) > now + self._leeway:
            raise InvalidTokenError("token not yet valid")
        return Claims(sub=sub, role=role, exp=exp, iat=iat, iss=self._issuer)


def _numeric_date(value: object) -> int:
    # JSON gives int or float; bool is an int to Python but never a date.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidTokenError("malformed token")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidTokenError("malformed token")
    return int(value)


def _public_reason(exc: jwt.InvalidTokenError) -> str:
    if isinstance(exc, jwt.InvalidSignatureError):
        return "invalid signature"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "unsupported algorithm"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing claim: {exc.claim}"  # one of our fixed names, never token text
    if isinstance(exc, jwt.InvalidIssuerError):
        return "wrong issuer"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "wrong audience"  # we never set aud; a token meant for someone else is refused
    if isinstance(exc, jwt.exceptions.InvalidSubjectError):
        return "invalid subject"
    return "malformed token"
