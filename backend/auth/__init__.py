"""Authentication: the RS256 key pair, JWT access tokens, password hashes and request guards."""

from backend.auth.cli import mint_token_command
from backend.auth.guards import authorize, bearer_claims, require_role
from backend.auth.keys import KeyFileError, KeyPair, load_or_create_keys
from backend.auth.passwords import (
    hash_password,
    hash_password_async,
    needs_rehash,
    verify_password,
    verify_password_async,
)
from backend.auth.tokens import Claims, InvalidTokenError, Role, TokenService

__all__ = [
    "Claims",
    "InvalidTokenError",
    "KeyFileError",
    "KeyPair",
    "Role",
    "TokenService",
    "authorize",
    "bearer_claims",
    "hash_password",
    "hash_password_async",
    "load_or_create_keys",
    "mint_token_command",
    "needs_rehash",
    "require_role",
    "verify_password",
    "verify_password_async",
]
