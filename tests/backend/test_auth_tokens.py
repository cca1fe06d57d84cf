"""Tokens: minting, verification, and every way a token must be refused."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.app import create_app
from backend.auth.tokens import (
    DEFAULT_LEEWAY,
    MAX_TOKEN_LENGTH,
    Claims,
    InvalidTokenError,
    Role,
    TokenService,
)
from backend.settings import Settings
from shared.resilience.testing import FakeClock
from tests.backend.auth_support import (
    hs256_token,
    segment,
    shared_key_pair,
    stranger_key_pair,
    unsigned_token,
)
from tests.support.polling import eventually

NOW = 1_700_000_000.0
"""The injected clock's wall time; the machine's own clock is years later, and never consulted."""


def set_wall(clock: FakeClock, when: float) -> None:
    clock.jump_wall(when - clock.wall())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(wall_start=NOW)


@pytest.fixture
def service(clock: FakeClock) -> TokenService:
    return TokenService(shared_key_pair(), clock=clock)


def claims_dict(**overrides: Any) -> dict[str, object]:
    claims: dict[str, object] = {
        "iss": "questcity",
        "sub": "user-1",
        "role": "player",
        "iat": int(NOW),
        "exp": int(NOW) + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def signed(payload: dict[str, object], *, key: Any = None, algorithm: str = "RS256") -> str:
    return jwt.encode(payload, key or shared_key_pair().private_key, algorithm=algorithm)


def refusal(service: TokenService, token: str) -> str:
    with pytest.raises(InvalidTokenError) as caught:
        service.verify(token)
    return caught.value.reason


def test_round_trip(service: TokenService) -> None:
    token = service.mint("user-42", Role.ADMIN, ttl=3600)

    assert service.verify(token) == Claims(
        sub="user-42", role=Role.ADMIN, exp=int(NOW) + 3600, iat=int(NOW), iss="questcity"
    )


def test_token_header_and_claims_are_as_designed(service: TokenService) -> None:
    token = service.mint("monitor", Role.OPERATOR, ttl=60)

    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    payload = jwt.decode(token, options={"verify_signature": False})
    assert set(payload) == {"sub", "role", "exp", "iat", "iss"}
    assert payload["role"] == "operator"


def test_custom_issuer_round_trips_and_is_enforced(clock: FakeClock) -> None:
    ours = TokenService(shared_key_pair(), issuer="questcity-staging", clock=clock)
    prod = TokenService(shared_key_pair(), clock=clock)
    token = ours.mint("a", Role.PLAYER, ttl=60)

    assert ours.verify(token).iss == "questcity-staging"
    assert refusal(prod, token) == "wrong issuer"


def test_alg_none_is_refused(service: TokenService) -> None:
    assert refusal(service, unsigned_token(claims_dict(role="admin"))) == "unsupported algorithm"


def test_hs256_signed_with_the_public_key_is_refused(service: TokenService) -> None:
    # The key-confusion attack: the public key is public, so an HS256 "signature" made with it
    # as the HMAC secret would verify if the verifier let the token pick its algorithm.
    forged = hs256_token(claims_dict(role="admin"), shared_key_pair().public_pem)

    assert refusal(service, forged) == "unsupported algorithm"


@pytest.mark.parametrize("algorithm", ["RS512", "PS256"])
def test_other_rsa_algorithms_are_refused(service: TokenService, algorithm: str) -> None:
    assert refusal(service, signed(claims_dict(), algorithm=algorithm)) == "unsupported algorithm"


def test_token_signed_by_another_key_pair_is_refused(service: TokenService) -> None:
    token = signed(claims_dict(), key=stranger_key_pair().private_key)

    assert refusal(service, token) == "invalid signature"


def test_tampered_payload_is_refused(service: TokenService) -> None:
    header, _, signature = service.mint("user-1", Role.PLAYER, ttl=60).split(".")
    tampered = f"{header}.{segment(claims_dict(role='admin'))}.{signature}"

    assert refusal(service, tampered) == "invalid signature"


def test_expired_token_is_refused_after_the_leeway(service: TokenService, clock: FakeClock) -> None:
    token = service.mint("user-1", Role.PLAYER, ttl=60)

    set_wall(clock, NOW + 60 + DEFAULT_LEEWAY - 1)
    assert service.verify(token).sub == "user-1"  # clock skew is forgiven...
    set_wall(clock, NOW + 60 + DEFAULT_LEEWAY)
    assert refusal(service, token) == "token expired"  # ...up to the leeway


def test_token_issued_in_the_future_is_refused(service: TokenService, clock: FakeClock) -> None:
    token = service.mint("user-1", Role.PLAYER, ttl=3600)
    set_wall(clock, NOW - DEFAULT_LEEWAY - 1)

    assert refusal(service, token) == "token not yet valid"


def test_not_before_is_judged_by_the_injected_clock(
    service: TokenService, clock: FakeClock
) -> None:
    token = signed(claims_dict(nbf=int(NOW) + 600, exp=int(NOW) + 3600))

    assert refusal(service, token) == "token not yet valid"
    set_wall(clock, NOW + 600 - DEFAULT_LEEWAY)
    assert service.verify(token).sub == "user-1"


def test_the_machines_own_clock_is_never_consulted(service: TokenService) -> None:
    # Valid by the machine's clock (years after NOW), expired long ago by the injected one...
    real_now = int(time.time())
    assert real_now > NOW + 3600
    live = signed(claims_dict(iat=real_now - 60, exp=real_now + 3600))
    assert refusal(service, live) == "token not yet valid"
    # ...and a token the injected clock finds valid is accepted although it expired for the
    # machine: expiry and "not yet valid" are both judged on the injected clock alone.
    assert service.verify(signed(claims_dict())).sub == "user-1"


def test_mint_stamps_the_injected_clocks_time(service: TokenService, clock: FakeClock) -> None:
    set_wall(clock, NOW + 1234)
    payload = jwt.decode(
        service.mint("user-1", Role.PLAYER, ttl=60), options={"verify_signature": False}
    )

    assert (payload["iat"], payload["exp"]) == (int(NOW) + 1234, int(NOW) + 1234 + 60)


def test_wrong_issuer_is_refused(service: TokenService) -> None:
    assert refusal(service, signed(claims_dict(iss="someone-else"))) == "wrong issuer"


def test_audience_we_never_issue_is_refused(service: TokenService) -> None:
    assert refusal(service, signed(claims_dict(aud="another-service"))) == "wrong audience"


@pytest.mark.parametrize("claim", ["role", "sub", "exp", "iat", "iss"])
def test_missing_claim_is_refused(service: TokenService, claim: str) -> None:
    token = signed(claims_dict(**{claim: None}))

    assert refusal(service, token) == f"missing claim: {claim}"


@pytest.mark.parametrize("role", ["superuser", "ADMIN", "", 1, ["admin"], True])
def test_unknown_role_is_refused(service: TokenService, role: object) -> None:
    assert refusal(service, signed(claims_dict(role=role))) == "unknown role"


@pytest.mark.parametrize("sub", [42, ""])
def test_bad_subject_is_refused(service: TokenService, sub: object) -> None:
    assert refusal(service, signed(claims_dict(sub=sub))) == "invalid subject"


@pytest.mark.parametrize(
    "claim", [{"exp": "tomorrow"}, {"exp": True}, {"iat": "now"}, {"nbf": [1]}], ids=str
)
def test_non_numeric_dates_are_refused(service: TokenService, claim: dict[str, object]) -> None:
    assert refusal(service, signed(claims_dict(**claim))) == "malformed token"


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "garbage",
        "a.b.c",
        "a.b",
        "....",
        "Bearer x",
        "é.é.é",
        f"{segment([1, 2])}.{segment({})}.sig",
        "x" * (MAX_TOKEN_LENGTH + 1),
    ],
    ids=lambda g: g[:20],
)
def test_garbage_is_refused_as_malformed(service: TokenService, garbage: str) -> None:
    assert refusal(service, garbage) == "malformed token"


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b'"a string"'], ids=repr)
def test_signed_payload_that_is_not_a_claims_object_is_malformed(
    service: TokenService, payload: bytes
) -> None:
    token = jwt.api_jws.PyJWS().encode(payload, shared_key_pair().private_key, algorithm="RS256")

    assert refusal(service, token) == "malformed token"


def test_unsigned_garbage_payload_fails_on_the_signature_first(service: TokenService) -> None:
    # The payload of a token whose signature is wrong is never even parsed.
    assert refusal(service, f"{segment({'alg': 'RS256'})}.bm90IGpzb24.sig") == "invalid signature"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.integers(min_value=0), st.text(min_size=1, max_size=3))
def test_any_text_is_either_valid_or_refused_never_a_crash(
    text: str, position: int, splice: str
) -> None:
    service = TokenService(shared_key_pair(), clock=FakeClock(wall_start=NOW))
    valid = service.mint("user-1", Role.PLAYER, ttl=60)
    cut = position % len(valid)
    # Random text, and a real token with a few characters swapped: almost-valid input is where
    # parsers break.
    for candidate in (text, valid[:cut] + splice + valid[cut + 1 :]):
        try:
            claims = service.verify(candidate)
        except InvalidTokenError:
            continue  # the expected outcome for almost every candidate; anything else fails
        assert claims.sub == "user-1"


def test_refusal_reason_never_echoes_the_token(service: TokenService) -> None:
    token = signed(claims_dict(), key=stranger_key_pair().private_key)

    with pytest.raises(InvalidTokenError) as caught:
        service.verify(token)

    assert token not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    ("sub", "role", "ttl"),
    [("", Role.ADMIN, 60), ("a", "root", 60), ("a", Role.ADMIN, 0), ("a", Role.ADMIN, True)],
)
def test_mint_refuses_bad_arguments(service: TokenService, sub: str, role: Any, ttl: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        service.mint(sub, role, ttl)


def test_roles() -> None:
    assert [r.value for r in Role] == ["player", "operator", "admin"]
    assert Role.ADMIN.satisfies(Role.OPERATOR)
    assert Role.ADMIN.satisfies(Role.ADMIN)
    assert not Role.OPERATOR.satisfies(Role.ADMIN)
    assert not Role.ADMIN.satisfies(Role.PLAYER)
    assert not Role.PLAYER.satisfies(Role.OPERATOR)


async def test_the_app_mints_and_judges_tokens_on_its_own_clock(tmp_path: Path) -> None:
    clock = FakeClock(wall_start=NOW)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'q.db'}", keys_dir=tmp_path / "keys"
    )
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        lifecycle = app.state.questcity.lifecycle

        async def migrated() -> bool:  # (not ended while aiosqlite still runs the migrations)
            return bool(lifecycle.migrated)

        await eventually(migrated, "the start-up migrations are applied")
        tokens: TokenService = app.state.questcity.token_service()
        token = tokens.mint("ops", Role.OPERATOR, ttl=60)
        assert jwt.decode(token, options={"verify_signature": False})["iat"] == int(NOW)

        clock.jump_wall(60 + DEFAULT_LEEWAY)
        assert refusal(tokens, token) == "token expired"
