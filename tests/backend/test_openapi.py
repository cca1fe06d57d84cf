"""The OpenAPI document (built by ``backend/api/openapi.py`` from the routes, the handlers'
declarations and the models) against the app it describes.

- It lists exactly the routes of ``backend.app.routes()``, so neither can drift from the other.
- It is a valid OpenAPI 3.1 document.
- Schemathesis drives the real ASGI app (lifespan, SQLite in a temporary directory, in-memory
  object store) from the document, per operation and as workflows along the document's links,
  and checks every answer: no server errors, documented status codes, headers, content types and
  bodies; schema-valid requests accepted and schema-invalid ones refused; auth enforced.

The run is deterministic (``derandomize``) so CI never meets a new random input; set
``QUESTCITY_FUZZ_EXAMPLES=500`` (say) to fuzz wider, with fresh random inputs on every run.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis.stateful import run_state_machine_as_test
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from requests.structures import CaseInsensitiveDict
from schemathesis import AuthContext, Case, CheckFunction, Response
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from backend.api.openapi import openapi_document as build_document
from backend.app import create_app, routes
from backend.auth import Role
from backend.auth.keys import PRIVATE_KEY_FILE
from backend.auth.usernames import check_new_username
from backend.settings import Settings
from backend.storage import InMemoryObjectStore
from tests.backend.auth_support import shared_key_pair


def openapi_document() -> dict[str, Any]:
    return build_document(routes())


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
STAFF_PATHS = ("/api/v1/health/detailed", "/api/v1/health/services/", "/metrics")

_FUZZ_EXAMPLES = int(os.environ.get("QUESTCITY_FUZZ_EXAMPLES", "0"))
SETTINGS = hypothesis.settings(
    max_examples=_FUZZ_EXAMPLES or 25,
    derandomize=not _FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    # One app serves every example of a test (starting one per example would be far too slow),
    # and requests through a whole ASGI app are slower than Hypothesis's defaults expect.
    suppress_health_check=[
        hypothesis.HealthCheck.function_scoped_fixture,
        hypothesis.HealthCheck.too_slow,
        hypothesis.HealthCheck.filter_too_much,
        hypothesis.HealthCheck.data_too_large,
    ],
)


# -- the document and the router -------------------------------------------------------------------


def _routed() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in routes():
        assert isinstance(route, Route), f"{route!r}: only plain routes are expected"
        methods = {method.lower() for method in route.methods or ()}
        if "get" in methods:
            methods.discard("head")  # Starlette adds HEAD to every GET route by itself
        found |= {(route.path, method) for method in methods}
    return found


def _documented() -> set[tuple[str, str]]:
    paths = openapi_document()["paths"]
    assert isinstance(paths, dict)
    return {
        (path, method) for path, item in paths.items() for method in item if method in HTTP_METHODS
    }


def test_document_lists_exactly_the_routes() -> None:
    routed, documented = _routed(), _documented()
    assert routed - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routed == set(), "documented operations that no route serves"


def test_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)


def test_every_component_is_used() -> None:
    document = openapi_document()
    components = document["components"]
    assert isinstance(components, dict)
    text = repr(document)
    unused = [
        f"{kind}/{name}"
        for kind, entries in components.items()
        if kind != "securitySchemes"
        for name in entries
        if f"'#/components/{kind}/{name}'" not in text
    ]
    assert unused == []


def test_callers_get_their_own_copy() -> None:
    document = openapi_document()
    document["paths"] = {}
    assert openapi_document()["paths"]


async def test_openapi_json_serves_the_document(tmp_path: Path) -> None:
    app = create_app(Settings(keys_dir=tmp_path / "keys"))  # this endpoint needs no lifespan
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == openapi_document()


# -- a running app for schemathesis ----------------------------------------------------------------


class CurrentApp:
    """The ASGI app schemathesis calls: it forwards to the app of the test that is running.

    Schemathesis' pytest plugin ends an ASGI app's lifespan after every test, and the backend does
    not start again after a shutdown, so each test gets a fresh app behind this one fixed object;
    schemathesis starts and stops the lifespan through it.
    """

    def __init__(self) -> None:
        self.app: Starlette | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the served fixture sets the app"
        await self.app(scope, receive, send)


CURRENT_APP = CurrentApp()


@dataclass(frozen=True)
class Served:
    admin_token: str
    player_token: str


def _wait_ready(client: asgi.ASGIClient, seconds: float = 20.0) -> None:
    pause = threading.Event()
    give_up = time.monotonic() + seconds
    while (response := client.get("/api/v1/health/ready")).status_code != 200:
        if time.monotonic() > give_up:
            pytest.fail(f"the app did not get ready: {response.status_code} {response.text}")
        pause.wait(0.02)  # the app starts up in schemathesis' event-loop thread meanwhile


def _player_token(client: asgi.ASGIClient) -> str:
    credentials = {"username": "schemathesis-player", "password": "correct horse battery"}
    registered = client.post("/api/v1/auth/register", json=credentials)
    assert registered.status_code == 201, registered.text
    login = client.post("/api/v1/auth/token", json=credentials)
    assert login.status_code == 200, login.text
    token: str = login.json()["access_token"]
    return token


def _serve(directory: Path) -> Served:
    """Start a fresh app on a new SQLite database in ``directory`` behind :data:`CURRENT_APP`.

    Any app started before is shut down first. Returns once the app is ready, with an admin token
    and a registered player's.
    """
    asgi.shutdown_lifespans()
    keys = directory / "keys"
    keys.mkdir(mode=0o700, parents=True)
    # A ready-made key pair: generating one for every app would be slow.
    (keys / PRIVATE_KEY_FILE).write_bytes(shared_key_pair().private_pem)
    (keys / PRIVATE_KEY_FILE).chmod(0o600)
    settings = Settings(database_url=f"sqlite+aiosqlite:///{directory}/q.db", keys_dir=keys)
    app = create_app(settings, object_store=InMemoryObjectStore())
    CURRENT_APP.app = app
    # Entering the client starts the lifespan, in schemathesis' event-loop thread.
    with asgi.get_client(cast("asgi.ASGIApp", CURRENT_APP)) as client:
        _wait_ready(client)
        admin = app.state.questcity.token_service().mint("schemathesis", Role.ADMIN, 3600)
        return Served(admin_token=admin, player_token=_player_token(client))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """A ready app on a fresh SQLite database, with an admin token and a registered player's."""
    try:
        yield _serve(tmp_path)
    finally:
        asgi.shutdown_lifespans()
        CURRENT_APP.app = None


# Coverage-phase cases are made when pytest collects the test, before any fixture has run, so the
# auth provider hands out stand-ins, swapped for the test's real tokens just before each call.
_ADMIN = "Bearer <admin token>"
_PLAYER = "Bearer <player token>"


class TokenAuth:
    """Staff routes get the admin token, everything else the player's."""

    def get(self, case: Case[Any], ctx: AuthContext) -> str:
        return _ADMIN if ctx.operation.path.startswith(STAFF_PATHS) else _PLAYER

    def set(self, case: Case[Any], data: str, ctx: AuthContext) -> None:
        _set_authorization(case, data)


def _set_authorization(case: Case[Any], value: str) -> None:
    headers: CaseInsensitiveDict[Any] = CaseInsensitiveDict(case.headers or {})
    headers["Authorization"] = value
    case.headers = headers


def _real_tokens(case: Case[Any], served: Served) -> None:
    headers = case.headers
    if not headers:
        return
    value = headers.get("Authorization")
    if value == _ADMIN:
        headers["Authorization"] = f"Bearer {served.admin_token}"
    elif value == _PLAYER:
        headers["Authorization"] = f"Bearer {served.player_token}"


# An explicit configuration: no schemathesis.toml lying around changes the run, and a fixed seed
# makes it repeatable (schemathesis otherwise seeds each run afresh, over ``derandomize``).
_CONFIG = schemathesis.Config(seed=None if _FUZZ_EXAMPLES else 2026)
schema = schemathesis.openapi.from_dict(openapi_document(), config=_CONFIG)
schema.app = CURRENT_APP
schema.auth(refresh_interval=None)(TokenAuth)


def _error_body(response: Response) -> dict[str, Any]:
    content_type = response.headers.get("content-type") or [""]
    if not content_type[0].startswith("application/json"):
        return {}
    body = response.json()
    return body if isinstance(body, dict) else {}


def _documented_refusal(case: Case[Any], response: Response) -> bool:
    """A 422 for schema-valid data that is nonetheless the answer the document gives.

    - ``idempotency_key_reused``: the key came with another request before; the generator draws
      keys for each case independently, so it cannot know.
    - ``cursor``: cursors are opaque; only those the API returned are valid.
    - A new name whose characters are each allowed (the document's pattern says which) but that
      mixes scripts, puts a mark after no letter, or grows past the limit once NFKC-normalised:
      beyond a pattern, said in words.
    - ``limit`` spelled with a fraction (``limit=2.0``): JSON Schema counts 2.0 as an integer, but
      a query string is text and the API reads decimal digits only.
    """
    if response.status_code != 422:
        return False
    body = _error_body(response)
    if body.get("error") == "idempotency_key_reused":
        return True
    if body.get("fields") == {"cursor": "is not a cursor this API returned"}:
        return True
    limit = (case.query or {}).get("limit")
    if body.get("fields") == {"limit": "must be a whole number"} and isinstance(limit, float):
        return True
    if case.operation.path == "/api/v1/auth/register" and isinstance(case.body, dict):
        username = case.body.get("username")
        if not isinstance(username, str):
            return False
        return (
            case.operation.path == "/api/v1/auth/register"
            and set(body.get("fields", {})) == {"username"}
            and check_new_username(username.strip()) is not None
        )
    return False


def _validate(case: Case[Any], response: Response, **transport: Any) -> None:
    __tracebackhide__ = True
    excluded: list[CheckFunction] = []
    if _documented_refusal(case, response):
        excluded.append(positive_data_acceptance)
    case.validate_response(response, excluded_checks=excluded, transport_kwargs=transport or None)


@schema.parametrize()
@SETTINGS
def test_operations_keep_to_the_document(case: Case[Any], served: Served) -> None:
    _real_tokens(case, served)
    _validate(case, case.call())


def test_workflows_keep_to_the_document(tmp_path: Path) -> None:
    """Chains along the document's links: create a quest, then read, change, complete, delete it,
    put and get its cover; register, then get the new user's avatar.

    Every scenario starts on a fresh app: what a scenario can draw depends on the answers it
    gets, and Hypothesis insists that replaying a scenario draws the same way.
    """
    scenarios = itertools.count()
    answered: set[tuple[str, int]] = set()

    class Workflows(schema.as_state_machine()):  # type: ignore[misc]
        served: Served

        def setup(self) -> None:
            self.served = _serve(tmp_path / f"scenario-{next(scenarios)}")

        def before_call(self, case: Case[Any]) -> None:
            _real_tokens(case, self.served)

        def after_call(self, response: Response, case: Case[Any]) -> None:
            answered.add((case.operation.label, response.status_code))

        def validate_response(
            self, response: Response, case: Case[Any], additional_checks: Any = None, **kwargs: Any
        ) -> None:
            __tracebackhide__ = True
            _validate(case, response, **kwargs)

    try:
        run_state_machine_as_test(
            Workflows,
            settings=hypothesis.settings(SETTINGS, max_examples=15, stateful_step_count=8),
        )
    finally:
        asgi.shutdown_lifespans()
        CURRENT_APP.app = None
    # The links led somewhere: some steps worked on a quest that an earlier step had created.
    followed = {label for label, status in answered if status < 300 and "{id}" in label}
    assert followed, sorted(answered)


# -- requests the generator does not make ----------------------------------------------------------


def _explicit(path: str, method: str, **kwargs: Any) -> Case[Any]:
    return schema[path][method].Case(**kwargs)


_LONE_SURROGATE = "\ud800"  # valid JSON ("\\ud800"), but not text any UTF-8 encoder accepts


@pytest.mark.parametrize(
    ("case", "token"),
    [
        pytest.param(
            _explicit(
                "/api/v1/auth/register",
                "POST",
                body={"username": "surrogate", "password": f"pass{_LONE_SURROGATE}"},
            ),
            None,
            id="register-lone-surrogate-password",
        ),
        pytest.param(
            _explicit(
                "/api/v1/quests",
                "POST",
                body={"title": f"t{_LONE_SURROGATE}", "city": "Riga", "points": 5},
            ),
            _PLAYER,
            id="create-quest-lone-surrogate-title",
        ),
    ],
)
def test_text_that_is_not_unicode_is_refused_not_crashed(
    case: Case[Any], token: str | None, served: Served
) -> None:
    if token is not None:
        _set_authorization(case, token)
        _real_tokens(case, served)
    response = case.call()
    _validate(case, response)
    assert response.status_code == 422


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            _explicit(
                "/api/v1/quests", "POST", body={"title": "Staff quest", "city": "Riga", "points": 5}
            ),
            id="create-quest",
        ),
        pytest.param(
            _explicit(
                "/api/v1/users/me/avatar",
                "PUT",
                body=b"\x89PNG\r\n\x1a\n" + bytes(16),
                media_type="image/png",
            ),
            id="put-avatar",
        ),
    ],
)
def test_staff_tokens_are_refused_on_player_routes(case: Case[Any], served: Served) -> None:
    """Staff tokens have no account behind their ``sub``: the documented answer is 403."""
    _set_authorization(case, f"Bearer {served.admin_token}")
    response = case.call()
    _validate(case, response)
    assert response.status_code == 403, response.text


def test_staff_tokens_cannot_complete_quests(served: Served) -> None:
    player = {"Authorization": f"Bearer {served.player_token}"}
    created = _explicit(
        "/api/v1/quests",
        "POST",
        body={"title": "A quest", "city": "Riga", "points": 5},
        headers=player,
    ).call()
    assert created.status_code == 201, created.text
    case = _explicit(
        "/api/v1/quests/{id}/complete",
        "POST",
        path_parameters={"id": created.json()["id"]},
        headers={"Authorization": f"Bearer {served.admin_token}"},
    )
    response = case.call()
    _validate(case, response)
    assert response.status_code == 403, response.text
