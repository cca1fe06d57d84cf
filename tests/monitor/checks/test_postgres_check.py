"""``postgres`` checks against a real PostgreSQL server (the session's ``postgres_server``): a
role that logs in and runs ``SELECT 1``, and each way it fails — a wrong password, a database
that does not exist, a role over its connection limit, no CONNECT privilege, a port refused, a
server that never answers, not PostgreSQL on the port, the variable unset or not a URL. What an
outcome says never carries the role, the password, the database or the host."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import quote

import asyncpg
import pytest

from monitor.checks.conditions import parse_condition
from monitor.checks.run import CheckRunner
from monitor.checks.spec import Check, CheckKind, Outcome, PostgresSettings
from monitor.store.models import Status
from tests.support import PostgresServer
from tests.support.clock import SkewClock
from tests.support.ports import free_port
from tests.support.tls_server import StallServer

VARIABLE = "QUESTCITY_CHECK_DB_URL"


@dataclass(frozen=True)
class Role:
    name: str
    password: str
    database: str
    host: str
    port: int

    def url(self, *, password: str | None = None, database: str | None = None) -> str:
        secret = quote(self.password if password is None else password, safe="")
        return (
            f"postgresql://{self.name}:{secret}@{self.host}:{self.port}/{database or self.database}"
        )

    def secrets(self) -> tuple[str, ...]:
        return (self.name, self.password, self.database, f"{self.port}")


@pytest.fixture
def database(postgres_server: PostgresServer) -> Iterator[str]:
    name = f"checkdb_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    yield name
    postgres_server.drop_database(name)


@pytest.fixture
async def role(postgres_server: PostgresServer, database: str) -> AsyncIterator[Role]:
    """A login role of its own with a random password, allowed on ``database``."""
    name = f"checker_{uuid.uuid4().hex[:12]}"
    password = f"pw-{uuid.uuid4().hex}"
    admin = await asyncpg.connect(postgres_server.dsn)
    try:
        await admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        host, port = postgres_server.address
        yield Role(name, password, database, host, port)
        await admin.execute(f"DROP ROLE {name}")
    finally:
        await admin.close()


async def admin_execute(postgres_server: PostgresServer, sql: str) -> None:
    admin = await asyncpg.connect(postgres_server.dsn)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


def pg_check(*, conditions: tuple[str, ...] = (), timeout: float = 5.0) -> Check:
    return Check(
        name="questcity-db",
        kind=CheckKind.POSTGRES,
        settings=PostgresSettings(url_env=VARIABLE),
        conditions=tuple(parse_condition(text, CheckKind.POSTGRES) for text in conditions),
        timeout=timeout,
    )


async def run_with(url: str | None, check: Check | None = None) -> Outcome:
    runner = CheckRunner(SkewClock(), environ={} if url is None else {VARIABLE: url})
    try:
        return await runner.run(check or pg_check())
    finally:
        await runner.aclose()


def assert_no_secrets(outcome: Outcome, role: Role) -> None:
    said = f"{outcome.error} {outcome.warning} {outcome.results}"
    for secret in role.secrets():
        assert secret not in said


async def test_a_role_that_logs_in_and_selects_is_healthy(
    role: Role, postgres_server: PostgresServer
) -> None:
    outcome = await run_with(role.url())
    assert outcome.status is Status.HEALTHY, outcome.error
    assert outcome.error is None
    assert outcome.latency_ms is not None and outcome.latency_ms > 0
    # closed, not left behind
    admin = await asyncpg.connect(postgres_server.dsn)
    try:
        left = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", role.name
        )
    finally:
        await admin.close()
    assert left == 0


async def test_a_sqlalchemy_url_is_read_as_the_plain_one(role: Role) -> None:
    outcome = await run_with(role.url().replace("postgresql://", "postgresql+asyncpg://"))
    assert outcome.status is Status.HEALTHY, outcome.error


async def test_written_conditions_are_judged(role: Role) -> None:
    held = await run_with(role.url(), pg_check(conditions=("[RESPONSE_TIME] < 5000",)))
    failed = await run_with(role.url(), pg_check(conditions=("[RESPONSE_TIME] < 0",)))
    assert held.status is Status.HEALTHY, held.error
    assert failed.status is Status.UNHEALTHY
    assert failed.error is not None and failed.error.startswith("[RESPONSE_TIME] < 0 failed: ")


async def test_a_wrong_password_is_authentication_failed(role: Role) -> None:
    outcome = await run_with(role.url(password="not-the-password"))
    assert outcome.status is Status.UNHEALTHY
    assert outcome.error == "authentication failed"
    assert_no_secrets(outcome, role)
    assert "not-the-password" not in str(outcome)


async def test_a_database_that_does_not_exist_is_said_so(role: Role) -> None:
    outcome = await run_with(role.url(database="no_such_database"))
    assert outcome.status is Status.UNHEALTHY
    assert outcome.error == "database does not exist"
    assert "no_such_database" not in str(outcome)
    assert_no_secrets(outcome, role)


async def test_a_role_over_its_connection_limit_is_too_many_connections(
    role: Role, postgres_server: PostgresServer
) -> None:
    await admin_execute(postgres_server, f"ALTER ROLE {role.name} CONNECTION LIMIT 0")
    outcome = await run_with(role.url())
    assert outcome.status is Status.UNHEALTHY
    assert outcome.error == "too many connections"
    assert_no_secrets(outcome, role)


async def test_another_refusal_is_its_sqlstate(role: Role, postgres_server: PostgresServer) -> None:
    await admin_execute(postgres_server, f"REVOKE CONNECT ON DATABASE {role.database} FROM PUBLIC")
    outcome = await run_with(role.url())
    assert outcome.status is Status.UNHEALTHY
    assert outcome.error == "server error 42501"  # insufficient_privilege
    assert_no_secrets(outcome, role)


async def test_a_refused_port_is_unreachable(role: Role) -> None:
    closed = Role(role.name, role.password, role.database, role.host, free_port())
    outcome = await run_with(closed.url())
    assert outcome.status is Status.UNREACHABLE
    assert outcome.error == "connection refused"
    assert_no_secrets(outcome, closed)


async def test_a_port_that_must_stay_closed_is_healthy_when_refused(role: Role) -> None:
    closed = Role(role.name, role.password, role.database, role.host, free_port())
    outcome = await run_with(closed.url(), pg_check(conditions=("[CONNECTED] == false",)))
    assert outcome.status is Status.HEALTHY, outcome.error


async def test_a_server_that_never_answers_times_out(role: Role) -> None:
    async with StallServer() as server:
        stalled = Role(role.name, role.password, role.database, server.host, server.port)
        outcome = await run_with(stalled.url(), pg_check(timeout=0.3))
    assert server.accepted >= 1
    assert outcome.status is Status.UNREACHABLE
    assert outcome.error == "timed out after 0.3 s"
    assert_no_secrets(outcome, stalled)


async def test_not_postgresql_on_the_port_is_unhealthy_and_says_nothing_it_sent(
    role: Role,
) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(8)
        writer.write(b"HTTP/1.1 400 Bad Request " + role.password.encode() + b"\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        other = Role(role.name, role.password, role.database, "127.0.0.1", port)
        outcome = await run_with(other.url())
    finally:
        server.close()
        await server.wait_closed()
    # asyncpg asks for TLS first and reads the refusal as a connection error: either is fine,
    # as long as nothing the server sent is repeated.
    assert (outcome.status, outcome.error) in (
        (Status.UNHEALTHY, "not a PostgreSQL answer"),
        (Status.UNREACHABLE, "connection lost"),
    )
    assert_no_secrets(outcome, other)
    assert "HTTP" not in str(outcome)


async def test_an_unset_variable_is_unknown() -> None:
    outcome = await run_with(None)
    assert outcome.status is Status.UNKNOWN
    assert outcome.error == f"url_env {VARIABLE} is not set"
    blank = await run_with("   ")
    assert (blank.status, blank.error) == (outcome.status, outcome.error)


async def test_a_variable_that_is_not_a_postgresql_url_is_unknown() -> None:
    outcome = await run_with("mysql://root:hunter2@db.internal/app")
    assert outcome.status is Status.UNKNOWN
    assert outcome.error == f"url_env {VARIABLE} does not hold a PostgreSQL URL"
    assert "hunter2" not in str(outcome) and "db.internal" not in str(outcome)


async def test_a_host_name_is_looked_up_and_its_addresses_tried(role: Role) -> None:
    """``localhost`` may resolve to ``::1`` first, where nothing listens: the next address is
    tried, as for the other kinds."""
    assert role.host == "127.0.0.1"
    by_name = Role(role.name, role.password, role.database, "localhost", role.port)
    outcome = await run_with(by_name.url())
    assert (outcome.status, outcome.error) == (Status.HEALTHY, None)


async def test_a_host_name_that_does_not_resolve_is_unreachable(role: Role) -> None:
    nowhere = Role(role.name, role.password, role.database, "no-such-host.invalid", role.port)
    outcome = await run_with(nowhere.url())
    assert (outcome.status, outcome.error) == (Status.UNREACHABLE, "name does not resolve")
    assert_no_secrets(outcome, nowhere)
