"""``questcity token`` says when its token expires (issue #14): a monitor given the default
hour's token went blind an hour later without a word. The token alone is on stdout, so
``export QUESTCITY_MONITOR_TOKEN=$(questcity token ...)`` still works; the note is on stderr."""

from __future__ import annotations

import argparse
from pathlib import Path

import jwt
import pytest

from backend.auth.cli import MONITOR_TTL, expiry_note
from backend.cli import run_token

T0 = 1_800_000_000.0


def test_the_command_prints_the_token_alone_and_its_expiry_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QUESTCITY_KEYS_DIR", str(tmp_path / "keys"))
    args = argparse.Namespace(role="operator", ttl=3600, subject=None)

    assert run_token(args) == 0

    out, err = capsys.readouterr()
    token = out.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600
    assert err.startswith("questcity token: expires ")
    assert "(in 1 hour)" in err
    assert f"--ttl {MONITOR_TTL}" in err


def test_a_short_operator_token_warns_of_the_monitor_and_a_long_one_or_an_admins_does_not() -> None:
    short = expiry_note("operator", 3600, T0)
    assert short.startswith("questcity token: expires 2027-01-15 09:00 UTC (in 1 hour); ")
    assert "monitor_token_expiring from its first check" in short
    assert expiry_note("operator", MONITOR_TTL, T0) == (
        "questcity token: expires 2027-04-15 08:00 UTC (in 90 days)"
    )
    assert expiry_note("admin", 3600, T0) == (
        "questcity token: expires 2027-01-15 09:00 UTC (in 1 hour)"
    )
