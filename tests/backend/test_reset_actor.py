"""A breaker reset names the person, not only the tool (issue #14): an admin token's request may
carry ``X-QuestCity-Actor`` (the browser TUI's signed-in engineer), and the audit line then reads
``reset by alice (via questcity-cli)`` with fields ``actor`` and ``via``.

The header is honoured only with an admin token (anyone else is refused 403 before it is read,
and the refusal names the token's subject); a value that is not 1 to 100 printable characters is
refused 400 and resets nothing, since it would go into the audit line.
"""

from __future__ import annotations

import json
import logging
from typing import Any, cast

import httpx
import pytest

from backend.auth import Role
from shared.resilience import CircuitBreaker, CircuitState
from shared.resilience.jsonlog import JsonFormatter
from tests.backend.integration.conftest import Harness
from tests.backend.test_breaker_reset_endpoint import (
    AUDIT_LOGGER,
    RESET,
    api,
    audit_lines,
    open_breaker,
    token,
)

__all__ = ["api"]  # the fixture, shared with the endpoint's own tests

ACTOR = "X-QuestCity-Actor"


async def reset(
    api: Harness,
    caplog: pytest.LogCaptureFixture,
    actor: str | bytes | None,
    role: Role = Role.ADMIN,
    subject: str = "questcity-cli",
) -> tuple[CircuitBreaker, httpx.Response]:
    """Open the database breaker, then reset it with ``subject``'s token naming ``actor`` (no
    header when ``None``), the audit log captured."""
    breaker = await open_breaker(api)
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    headers: dict[str, Any] = token(api, role, subject)
    if actor is not None:
        headers[ACTOR] = actor
    return breaker, await api.client.post(RESET.format("database"), headers=headers)


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The audit line's JSON fields."""
    return cast("dict[str, Any]", json.loads(JsonFormatter().format(record)))


async def test_an_admin_tool_acting_for_a_person_names_them_in_the_audit_line(
    api: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    breaker, response = await reset(api, caplog, "alice")

    assert response.status_code == 200, response.text
    assert breaker.state is CircuitState.CLOSED
    [record] = audit_lines(caplog)
    assert record.getMessage() == (
        "circuit breaker database reset by alice (via questcity-cli) "
        f"on {api.settings.instance_id} (was open)"
    )
    line = fields(record)
    assert {k: line[k] for k in ("event", "breaker", "actor", "via", "role")} == {
        "event": "breaker_reset",
        "breaker": "database",
        "actor": "alice",
        "via": "questcity-cli",
        "role": "admin",
    }


async def test_without_the_header_the_line_names_the_token_and_has_no_via(
    api: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await reset(api, caplog, None)

    [record] = audit_lines(caplog)
    assert "reset by questcity-cli on" in record.getMessage()
    assert "via" not in fields(record)


async def test_an_operator_naming_someone_else_is_refused_and_the_refusal_names_the_token(
    api: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    breaker, response = await reset(api, caplog, "alice", Role.OPERATOR, "mallory")

    assert response.status_code == 403, response.text
    assert breaker.state is CircuitState.OPEN
    [record] = audit_lines(caplog)
    assert "alice" not in record.getMessage()
    assert fields(record)["actor"] == "mallory"


@pytest.mark.parametrize(
    "value",
    ["a" * 101, "   ", "alice\tbob", "alice\x7f", "%FF%FE", "alice%0Abob", "%09"],
    ids=["too-long", "blank", "tab", "control", "encoded-not-utf8", "encoded-lf", "encoded-tab"],
)
async def test_an_actor_that_is_not_a_short_printable_name_is_400_and_resets_nothing(
    api: Harness, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Percent-encoded values are judged by what they decode to."""
    breaker, response = await reset(api, caplog, value)

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_actor"
    assert "X-QuestCity-Actor must be 1 to 100 printable characters" in response.json()["message"]
    assert breaker.state is CircuitState.OPEN
    assert audit_lines(caplog) == []


async def test_a_hundred_characters_are_accepted_and_surrounding_spaces_trimmed(
    api: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    name = "é" + "b" * 99  # Latin-1 travels in a header; still printable
    _, response = await reset(api, caplog, f" {name} ".encode("latin-1"))

    assert response.status_code == 200, response.text
    [record] = audit_lines(caplog)
    assert fields(record)["actor"] == name


@pytest.mark.parametrize("name", ["Zoë Müller", "渡辺 さくら", "50% Alice"])
async def test_a_percent_encoded_name_is_decoded_into_the_audit_line(
    api: Harness, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """What ``questcity breaker reset --by`` and the TUI send (monitor.reset.actor_header_value):
    a name outside ASCII (or with a ``%``) UTF-8 percent-encoded, audited as the name itself."""
    from monitor.reset import actor_header_value

    _, response = await reset(api, caplog, actor_header_value(name))

    assert response.status_code == 200, response.text
    [record] = audit_lines(caplog)
    assert fields(record)["actor"] == name
    assert f"reset by {name} (via questcity-cli)" in record.getMessage()
