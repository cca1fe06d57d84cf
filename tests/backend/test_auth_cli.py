"""``questcity token``: the command function behind it."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.auth.cli import DEFAULT_SUBJECT, MAX_TTL, mint_token_command
from backend.auth.keys import load_or_create_keys
from backend.auth.tokens import Role, TokenService
from backend.settings import Settings


def test_mints_a_token_the_backend_accepts(tmp_path: Path) -> None:
    settings = Settings(keys_dir=tmp_path / "keys", token_issuer="questcity-test")

    token = mint_token_command(settings, "admin", 3600, None)

    # The backend loads the same key files at start-up and verifies with them.
    backend = TokenService(load_or_create_keys(tmp_path / "keys"), issuer="questcity-test")
    claims = backend.verify(token)
    assert claims.role is Role.ADMIN
    assert claims.sub == DEFAULT_SUBJECT
    assert claims.exp - claims.iat == 3600


def test_subject_is_used_when_given(tmp_path: Path) -> None:
    settings = Settings(keys_dir=tmp_path)

    token = mint_token_command(settings, "operator", 60, "monitor-eu")

    claims = TokenService(load_or_create_keys(tmp_path)).verify(token)
    assert (claims.sub, claims.role) == ("monitor-eu", Role.OPERATOR)


@pytest.mark.parametrize(
    ("role", "ttl", "subject", "message"),
    [
        ("root", 60, None, "--role must be operator or admin, not 'root'"),
        ("player", 60, None, "--role must be operator or admin"),
        ("admin", 0, None, "--ttl must be a whole number of seconds"),
        ("admin", MAX_TTL + 1, None, "--ttl"),
        ("admin", 60, "  ", "--subject"),
    ],
)
def test_bad_arguments_are_value_errors_and_create_nothing(
    tmp_path: Path, role: str, ttl: int, subject: str | None, message: str
) -> None:
    keys_dir = tmp_path / "keys"

    with pytest.raises(ValueError, match=message):
        mint_token_command(Settings(keys_dir=keys_dir), role, ttl, subject)

    assert not keys_dir.exists()
