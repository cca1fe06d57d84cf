"""The backend names itself (ARCHITECTURE §4, §6, §11): ``QUESTCITY_INSTANCE_ID``.

Breaker state and counters belong to one process, so every reader must know which process
answered and whether it restarted: the id (default ``<hostname>-<pid>``; an override is held to a
safe, bounded set of characters) and the start time (the app's clock at ``create_app``) are in
``/detailed`` for staff and in a breaker reset's answer, never in the public summary; every JSON
log line and the breaker reset's audit line name the instance. The backend runs in-process on
SQLite through httpx's ASGI transport.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from backend.api.models.health import BreakerReset, HealthDetailed
from backend.app import create_app
from backend.auth import Role
from backend.settings import INSTANCE_ID_MAX, Settings, SettingsError, default_instance_id
from backend.state import AppState
from shared.resilience.jsonlog import JsonFormatter, configure_logging, log_fields
from tests.support.clock import SkewClock

INSTANCE = "api-2"
STARTED_AT = 1_767_000_000.25  # what the app's clock says when create_app runs
DETAILED = "/api/v1/health/detailed"
SUMMARY = "/api/v1/health/"
RESET = "/api/v1/health/services/database/reset"
AUDIT_LOGGER = "backend.audit"


# -- the setting ------------------------------------------------------------------------------


def test_the_default_id_is_the_host_name_and_the_process_id() -> None:
    hostname = socket.gethostname()
    settings = Settings.from_mapping({})

    assert settings.instance_id == f"{hostname}-{os.getpid()}"


def test_two_settings_of_one_process_share_the_default() -> None:
    assert Settings().instance_id == Settings.from_mapping({}).instance_id


@pytest.mark.parametrize(
    "hostname",
    ["node 7/<b>", "x" * 300, "", "pod\n1"],
    ids=["unsafe characters", "too long", "empty", "line break"],
)
def test_any_host_name_gives_a_default_that_passes_the_rule(hostname: str) -> None:
    instance_id = default_instance_id(hostname, 4242)

    assert instance_id.endswith("-4242")  # the pid is never cut
    assert 1 <= len(instance_id) <= INSTANCE_ID_MAX
    Settings(instance_id=instance_id).validate()


@pytest.mark.parametrize("value", ["api-2", "questcity-backend-7d9f8c-x2k4q", "10.0.0.5:8000", "a"])
def test_the_environment_names_the_instance(value: str) -> None:
    settings = Settings.from_mapping({"QUESTCITY_INSTANCE_ID": f" {value} "})

    assert settings.instance_id == value


@pytest.mark.parametrize(
    "value",
    ["api 2", "api/2", "<b>api</b>", "api\n2", "   ", "é", "a" * (INSTANCE_ID_MAX + 1)],
    ids=["space", "slash", "markup", "line break", "blank", "non-ascii", "101 characters"],
)
def test_a_bad_id_is_refused_with_the_rule_and_an_example(value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_mapping({"QUESTCITY_INSTANCE_ID": value})

    message = str(refused.value)
    assert message.startswith("QUESTCITY_INSTANCE_ID=")
    assert f"1 to {INSTANCE_ID_MAX} letters, digits, '.', '_', ':' or '-'" in message
    assert "for example api-2" in message


def test_a_bad_id_given_in_code_is_refused_too() -> None:
    with pytest.raises(SettingsError, match="QUESTCITY_INSTANCE_ID='api 2'"):
        Settings(instance_id="api 2").validate()


def test_the_longest_id_allowed_is_accepted() -> None:
    value = "a" * INSTANCE_ID_MAX
    assert Settings.from_mapping({"QUESTCITY_INSTANCE_ID": value}).instance_id == value


# -- the running backend ----------------------------------------------------------------------


class StartClock(SkewClock):
    """Real monotonic time; the wall clock reads STARTED_AT until ``release``: so the test
    sees which reading create_app kept."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen = True

    def wall(self) -> float:
        return STARTED_AT if self.frozen else super().wall()


@dataclass
class Api:
    app: Starlette
    client: httpx.AsyncClient

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.questcity
        return state

    def auth(self, role: Role, sub: str = "on-call") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.state.token_service().mint(sub, role, 600)}"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'questcity.db'}",
        keys_dir=tmp_path / "keys",
        health_interval=0.2,
        instance_id=INSTANCE,
    )
    clock = StartClock()
    app = create_app(settings, clock=clock)
    clock.frozen = False  # every later reading differs from the start time
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://questcity.test"
        ) as client,
    ):
        yield Api(app, client)


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ADMIN])
async def test_detailed_says_which_instance_answered_and_when_it_started(
    api: Api, role: Role
) -> None:
    response = await api.client.get(DETAILED, headers=api.auth(role))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["instance"] == {"id": INSTANCE, "started_at": STARTED_AT}
    assert isinstance(body["timestamp"], float)  # the same unit: seconds since the epoch
    HealthDetailed.model_validate(body)  # what the OpenAPI document promises


@pytest.mark.parametrize("accept", ["application/json", "application/health+json"])
async def test_the_public_summary_never_names_the_instance(api: Api, accept: str) -> None:
    response = await api.client.get(SUMMARY, headers={"Accept": accept})

    assert response.status_code in (200, 503), response.text
    assert "instance" not in response.json()
    assert INSTANCE not in response.text


async def test_detailed_without_a_token_names_no_instance(api: Api) -> None:
    response = await api.client.get(DETAILED, headers={"Accept": "application/health+json"})

    assert response.status_code == 401
    assert INSTANCE not in response.text


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == AUDIT_LOGGER]


async def test_the_reset_audit_line_names_the_actor_and_the_instance(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)

    response = await api.client.post(RESET, headers=api.auth(Role.ADMIN, "on-call"))

    assert response.status_code == 200, response.text
    [record] = audit_lines(caplog)
    assert record.getMessage() == "circuit breaker database reset by on-call on api-2 (was closed)"
    line = json.loads(JsonFormatter().format(record))
    assert {k: line[k] for k in ("event", "actor", "instance", "breaker")} == {
        "event": "breaker_reset",
        "actor": "on-call",
        "instance": INSTANCE,
        "breaker": "database",
    }


async def test_the_reset_answer_says_whose_breaker_it_closed(api: Api) -> None:
    response = await api.client.post(RESET, headers=api.auth(Role.ADMIN))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["instance"] == {"id": INSTANCE, "started_at": STARTED_AT}
    BreakerReset.model_validate(body)


async def test_a_refused_reset_names_the_instance_too(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)

    response = await api.client.post(RESET, headers=api.auth(Role.OPERATOR, "mallory"))

    assert response.status_code == 403
    [record] = audit_lines(caplog)
    line = json.loads(JsonFormatter().format(record))
    assert (line["actor"], line["instance"]) == ("mallory", INSTANCE)


# -- the log lines ----------------------------------------------------------------------------


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The process's JSON log handler on a buffer; the root logger put back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("INFO", stream, quiet=())
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_every_json_log_line_names_the_instance_while_the_app_runs(
    tmp_path: Path, log_stream: io.StringIO
) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'questcity.db'}",
        keys_dir=tmp_path / "keys",
        instance_id=INSTANCE,
    )
    app = create_app(settings, clock=SkewClock())
    async with app.router.lifespan_context(app):
        logging.getLogger("backend.anywhere").warning("while serving")
    logging.getLogger("backend.anywhere").warning("after the app stopped")

    by_message = {line["message"]: line for line in lines(log_stream)}
    assert by_message["while serving"]["instance"] == INSTANCE
    assert "instance" not in by_message["after the app stopped"]


def test_log_fields_nest_and_put_back_what_they_found(log_stream: io.StringIO) -> None:
    log = logging.getLogger("backend.anywhere")
    with log_fields(instance="a"):
        with log_fields(instance="b", zone="z1"):
            log.warning("inner")
        log.warning("outer")
        log.warning("own extra", extra={"instance": "mine"})
    log.warning("none")

    found = {line["message"]: line for line in lines(log_stream)}
    assert (found["inner"]["instance"], found["inner"]["zone"]) == ("b", "z1")
    assert found["outer"]["instance"] == "a" and "zone" not in found["outer"]
    assert found["own extra"]["instance"] == "mine"
    assert "instance" not in found["none"]


def test_log_fields_cannot_hide_a_standard_key(log_stream: io.StringIO) -> None:
    with pytest.raises(ValueError, match="message"), log_fields(message="forged"):
        pass
