"""Helpers for the auth tests: shared key pairs (RSA generation is slow) and hand-built tokens."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json

from backend.auth.keys import KeyPair


@functools.cache
def shared_key_pair() -> KeyPair:
    return KeyPair.generate()


@functools.cache
def stranger_key_pair() -> KeyPair:
    """A second pair, standing for someone else's signing key."""
    return KeyPair.generate()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(obj: object) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def unsigned_token(payload: dict[str, object]) -> str:
    """An ``alg: none`` token, the way an attacker writes it (empty signature)."""
    return f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(payload)}."


def hs256_token(payload: dict[str, object], secret: bytes) -> str:
    """An HS256 token built by hand, so PyJWT's own guard against PEM secrets can't interfere."""
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{segment(payload)}"
    signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"
