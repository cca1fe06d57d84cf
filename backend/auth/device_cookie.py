"""Device cookies (OWASP): proof that a browser or client has logged in to an account before.

A successful login answers with ``Set-Cookie: questcity_device=<value>``; the value names the
account by its unique key (not readable from the cookie: only its HMAC is there), when it was
issued, and a random device id, all signed with HMAC-SHA256. A login that brings a valid cookie
for the account it names is from a *trusted* device (see :mod:`backend.auth.throttle`).

The signing secret is derived from the backend's RS256 private key
(:meth:`backend.auth.tokens.TokenService.derive_secret`), so every replica that shares
the key pair accepts every replica's cookies, a restart keeps them valid, and replacing the key
pair (which already logs every user out) revokes them too.

Value: ``v1.<issued>.<device id>.<signature>`` (base64url, no padding); under 100 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

SECRET_PURPOSE = b"questcity device cookie v1"
COOKIE_NAME = "questcity_device"
COOKIE_PATH = "/api/v1/auth/token"
MAX_AGE = 90 * 24 * 3600
"""Seconds a device cookie is honoured (and the browser keeps it)."""
_VERSION = "v1"
_MAX_VALUE = 200


@dataclass(frozen=True, slots=True)
class DeviceCookies:
    """Issues and checks device cookies with one secret; times are wall-clock seconds."""

    secret: bytes

    def issue(self, account: str, now: float) -> str:
        """A cookie value for ``account`` (its unique key) from a new device id."""
        device = _b64(secrets.token_bytes(12))
        issued = str(int(now))
        return f"{_VERSION}.{issued}.{device}.{self._sign(account, issued, device)}"

    def device_for(self, value: str | None, account: str, now: float) -> str | None:
        """The device id in ``value`` if it is a valid, unexpired cookie for ``account``."""
        # Headers arrive as latin-1 text: anything outside ASCII is not one of ours (and would
        # make compare_digest on str raise TypeError).
        if not value or len(value) > _MAX_VALUE or not value.isascii():
            return None
        parts = value.split(".")
        if len(parts) != 4 or parts[0] != _VERSION:
            return None
        _, issued, device, signature = parts
        if not (issued.isascii() and issued.isdecimal()) or len(issued) > 12:
            return None
        if not 0 <= now - int(issued) <= MAX_AGE:
            return None
        expected = self._sign(account, issued, device)
        if not hmac.compare_digest(signature.encode("ascii"), expected.encode("ascii")):
            return None
        return device

    def _sign(self, account: str, issued: str, device: str) -> str:
        message = f"{_VERSION}\0{account}\0{issued}\0{device}".encode("utf-8", "surrogatepass")
        return _b64(hmac.new(self.secret, message, hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
