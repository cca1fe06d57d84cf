"""The signed links in subscribers' messages: confirm a subscription, unsubscribe.

A token is ``PURPOSE.ID.EXPIRES.MAC``: the subscriber's id, when the link stops working (0:
never, for unsubscribe links, which must work in every message ever sent) and an HMAC-SHA256 over
those and the subscriber's address, keyed by ``[subscriptions] secret_env``. The address is in the
MAC (not in the link): a link minted for one subscriber never works for another that later gets
its id. The monitor mints them; the status page checks them (it reads the subscriber's address
by id first). Nothing here is a secret but the key."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

CONFIRM = "confirm"
UNSUBSCRIBE = "unsubscribe"
PURPOSES = (CONFIRM, UNSUBSCRIBE)
MAX_TOKEN = 200
"""Characters a token may have; a longer one is not ours and is not parsed."""
_MAC_BYTES = 20


@dataclass(frozen=True, slots=True)
class Token:
    purpose: str
    subscriber_id: int
    expires_at: int
    """Seconds since the epoch; 0: never."""
    mac: str


def _mac(secret: bytes, purpose: str, subscriber_id: int, expires_at: int, address: str) -> str:
    message = f"{purpose}\n{subscriber_id}\n{expires_at}\n{address.lower()}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def mint(
    secret: bytes, purpose: str, subscriber_id: int, address: str, *, expires_at: float = 0
) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    expires = int(expires_at)
    mac = _mac(secret, purpose, subscriber_id, expires, address)
    return f"{purpose}.{subscriber_id}.{expires}.{mac}"


def parse(text: str, purpose: str) -> Token | None:
    """The token's parts if ``text`` has a token's shape for ``purpose``; None otherwise (the
    MAC is not checked here: :func:`valid` does, once the subscriber's address is read)."""
    if len(text) > MAX_TOKEN or not text.isascii():
        return None
    parts = text.split(".")
    if len(parts) != 4 or parts[0] != purpose:
        return None
    _, raw_id, raw_expires, mac = parts
    if (
        not (raw_id.isdigit() and raw_expires.isdigit())
        or len(raw_id) > 18
        or len(raw_expires) > 12
    ):
        return None
    return Token(purpose, int(raw_id), int(raw_expires), mac)


def valid(secret: bytes, token: Token, address: str, now: float) -> bool:
    """Whether ``token`` was minted with ``secret`` for the subscriber with ``address`` and has
    not expired (compared in constant time)."""
    expected = _mac(secret, token.purpose, token.subscriber_id, token.expires_at, address)
    if not hmac.compare_digest(expected, token.mac):
        return False
    return token.expires_at == 0 or now < token.expires_at
