"""``POST /api/v1/health/services/{name}/reset`` (ARCHITECTURE §6): an admin closes a
breaker by hand.

Only an admin token may (401 without a valid token, 403 for any other role), an unknown service
is a 404, and every reset is written to the log as an audit line: who reset which breaker, from
which state. A refused one (403) is written too, as who asked with what role for which service;
a 401 is not (anyone can send those, and a flood of them would fill the audit log). The
backend runs in-process on SQLite, driven through httpx's ASGI transport.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backend.auth import Role
from backend.settings import Settings
from shared.resilience import CircuitBreaker, CircuitState
from shared.resilience.jsonlog import JsonFormatter
from tests.backend.integration.conftest import Harness, running

RESET = "/api/v1/health/services/{}/reset"
AUDIT_LOGGER = "backend.audit"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Harness]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'questcity.db'}",
        keys_dir=tmp_path / "keys",
        health_interval=0.2,
    )
    async with running(settings, "") as harness:
        yield harness


async def _refused() -> None:
    raise ConnectionRefusedError("the database is down")


async def open_breaker(api: Harness, name: str = "database") -> CircuitBreaker:
    """The app's breaker for ``name``, opened the way an outage opens it: failed calls."""
    breaker = api.state.registry.find_circuit_breaker(name)
    assert breaker is not None
    for _ in range(breaker.config.failure_threshold):
        with pytest.raises(ConnectionRefusedError):
            await breaker.call(_refused)
    assert breaker.state is CircuitState.OPEN
    return breaker


def token(api: Harness, role: Role, sub: str) -> dict[str, str]:
    return api.auth(api.state.token_service().mint(sub, role, 600))


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == AUDIT_LOGGER]


async def test_a_reset_without_a_token_is_401_and_the_breaker_stays_open(
    api: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = await open_breaker(api)
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)

    response = await api.client.post(RESET.format("database"))

    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert breaker.state is CircuitState.OPEN
    assert audit_lines(caplog) == []  # anonymous: nobody to name, and a flood would fill the log


async def test_a_reset_with_a_token_we_did_not_sign_is_401(
    api: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = await open_breaker(api)
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)

    response = await api.client.post(RESET.format("database"), headers=api.auth("not.a.token"))

    assert response.status_code == 401, response.text
    assert breaker.state is CircuitState.OPEN
    assert audit_lines(caplog) == []


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.PLAYER], ids=["operator", "player"])
async def test_a_reset_by_anyone_but_an_admin_is_403_and_the_breaker_stays_open(
    api: Harness, role: Role, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = await open_breaker(api)
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)

    response = await api.client.post(RESET.format("database"), headers=token(api, role, "mallory"))

    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
    assert breaker.state is CircuitState.OPEN
    [record] = audit_lines(caplog)
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"circuit breaker reset of 'database' refused to mallory (role {role.value})"
    )
    line = json.loads(JsonFormatter().format(record))  # as the log pipeline receives it
    assert {k: line[k] for k in ("event", "breaker", "actor", "role")} == {
        "event": "breaker_reset_refused",
        "breaker": "database",
        "actor": "mallory",
        "role": role.value,
    }


async def test_a_reset_of_an_unknown_service_is_404(api: Harness) -> None:
    response = await api.client.post(
        RESET.format("no-such-service"), headers=token(api, Role.ADMIN, "alice")
    )

    assert response.status_code == 404, response.text
    assert "no-such-service" in response.json()["message"]


async def test_a_non_admin_is_refused_before_learning_whether_a_service_exists(
    api: Harness,
) -> None:
    response = await api.client.post(
        RESET.format("no-such-service"), headers=token(api, Role.OPERATOR, "mallory")
    )

    assert response.status_code == 403, response.text


async def test_a_refused_reset_of_any_name_is_audited_with_the_name_asked_for_quoted(
    api: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    asked = "no-such\nservice"  # a line break in the path must not start a forged log line

    response = await api.client.post(
        RESET.format("no-such%0Aservice"), headers=token(api, Role.OPERATOR, "mallory")
    )

    assert response.status_code == 403, response.text
    [record] = audit_lines(caplog)
    assert record.getMessage() == (
        "circuit breaker reset of 'no-such\\nservice' refused to mallory (role operator)"
    )
    assert "\n" not in record.getMessage()
    assert json.loads(JsonFormatter().format(record))["breaker"] == asked


async def test_an_admin_reset_closes_an_open_breaker(api: Harness) -> None:
    breaker = await open_breaker(api)

    response = await api.client.post(
        RESET.format("database"), headers=token(api, Role.ADMIN, "alice")
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "service": "database",
        "state": "closed",
        "previous_state": "open",
        "instance": {"id": api.settings.instance_id, "started_at": body["instance"]["started_at"]},
    }
    assert breaker.state is CircuitState.CLOSED


async def test_a_reset_writes_an_audit_line_naming_who_which_breaker_and_its_state_before(
    api: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await open_breaker(api)
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)

    await api.client.post(RESET.format("database"), headers=token(api, Role.ADMIN, "alice"))

    [record] = audit_lines(caplog)
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"circuit breaker database reset by alice on {api.settings.instance_id} (was open)"
    )
    line = json.loads(JsonFormatter().format(record))  # as the log pipeline receives it
    assert {k: line[k] for k in ("event", "breaker", "actor", "role", "previous_state")} == {
        "event": "breaker_reset",
        "breaker": "database",
        "actor": "alice",
        "role": "admin",
        "previous_state": "open",
    }
