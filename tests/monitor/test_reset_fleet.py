"""Reset everywhere (:mod:`monitor.reset`): one breaker closed on every replica of a target.

Against three real backend processes sharing one key directory and one PostgreSQL database, with
S3 behind a fault proxy: S3 refused opens the three s3 breakers; S3 healed, one
``reset_everywhere`` closes all three at once, long before their 30 s recovery timeout; a replica
that is down is its own failed outcome and the others are reset; 401, 403 and 404 in words.

A backend's answer is hostile: an endless or declared-huge body, the wrong JSON, escape sequences,
a replica that never answers — those on ``httpx.MockTransport`` and a manual clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from backend.auth.cli import mint_token_command
from backend.db import migrate
from backend.db.engine import create_engine
from backend.settings import Settings
from monitor.config import Target
from monitor.discovery import Replica
from monitor.reset import MAX_ANSWER_BYTES, ReplicaOutcome, reset_everywhere, reset_summary
from shared.resilience.testing import FakeClock, settle
from tests.support import FaultProxy, PostgresServer, S3Server
from tests.support.polling import eventually
from tests.support.ports import free_port
from tests.support.process import ManagedProcess, log_tail

ADMIN_ENV = "QC_TEST_ADMIN_TOKEN"
RECOVERY_TIMEOUT = 30.0
"""The s3 breaker's recovery timeout (the seed's preset): without a reset it stays open so long."""


# -- three real backend processes -------------------------------------------------------------


@dataclass
class Fleet:
    replicas: list[Replica]
    processes: list[ManagedProcess]
    admin_token: str
    operator_token: str
    tmp_path: Path

    @property
    def instances(self) -> dict[str, str]:
        """Each replica's ``QUESTCITY_INSTANCE_ID``, by key."""
        return {replica.key: f"replica-{n}" for n, replica in enumerate(self.replicas)}

    def target(self) -> Target:
        return Target(
            "questcity-api",
            self.replicas[0].url,
            timeout=5.0,
            admin_token_env=ADMIN_ENV,
            replicas=tuple(replica.url for replica in self.replicas),
        )

    async def breaker_states(
        self, client: httpx.AsyncClient, service: str, replicas: Sequence[Replica] | None = None
    ) -> list[str]:
        """Each replica's breaker state of ``service``, as its own ``/detailed`` says now."""
        states = []
        for replica in self.replicas if replicas is None else replicas:
            answer = await client.get(
                f"{replica.url}/api/v1/health/detailed",
                headers={"Authorization": f"Bearer {self.operator_token}"},
            )
            states.append(str(answer.json()["checks"][service]["circuit_breaker"]["state"]))
        return states

    def logs(self) -> str:
        return "\n".join(
            log_tail(self.tmp_path / f"backend-{n}.log") for n in range(len(self.processes))
        )


@contextlib.asynccontextmanager
async def running_fleet(
    postgres_server: PostgresServer,
    s3_server: S3Server,
    s3_proxy: FaultProxy,
    tmp_path: Path,
    *,
    count: int = 3,
) -> AsyncIterator[Fleet]:
    """``count`` ``questcity backend`` processes on one database, one key directory, one bucket
    (S3 through ``s3_proxy``), each named by ``QUESTCITY_INSTANCE_ID`` and health-checking its
    services every 0.2 s."""
    database = f"qc_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(database)
    keys_dir = tmp_path / "keys"
    env = {
        **os.environ,
        "QUESTCITY_DATABASE_URL": postgres_server.url_for(database=database),
        "QUESTCITY_S3_ENDPOINT_URL": s3_proxy.url(),
        "QUESTCITY_S3_BUCKET": f"qc-{uuid.uuid4().hex[:12]}",
        "QUESTCITY_S3_ACCESS_KEY": s3_server.access_key,
        "QUESTCITY_S3_SECRET_KEY": s3_server.secret_key,
        "QUESTCITY_KEYS_DIR": str(keys_dir),
        "QUESTCITY_HEALTH_INTERVAL": "0.2",
        "QUESTCITY_S3_TIMEOUT": "1",
        "QUESTCITY_DRAIN_DELAY": "0",
    }
    ports = [free_port() for _ in range(count)]
    processes = [
        ManagedProcess(
            [sys.executable, "-m", "questcity", "backend", "--port", str(port)],
            log_path=tmp_path / f"backend-{n}.log",
            env={**env, "QUESTCITY_INSTANCE_ID": f"replica-{n}"},
            cwd=tmp_path,  # no stray .env from the repository's directory
        )
        for n, port in enumerate(ports)
    ]
    replicas = [Replica(f"127.0.0.1:{port}", f"http://127.0.0.1:{port}") for port in ports]
    # As a deployment does before it starts its replicas: the keys made (by minting the tokens)
    # and the database migrated once, so the three start at once without racing to do either.
    settings = Settings(database_url=env["QUESTCITY_DATABASE_URL"], keys_dir=keys_dir)
    admin_token = mint_token_command(settings, "admin", 600, "on-call")
    operator_token = mint_token_command(settings, "operator", 600, "monitor")
    engine = create_engine(settings)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:

            async def ready(replica: Replica) -> None:
                async def answers() -> bool:
                    try:
                        answer = await client.get(f"{replica.url}/api/v1/health/ready")
                    except httpx.TransportError:
                        return False
                    return answer.status_code == 200

                await eventually(answers, f"{replica.key} ready", within=60)

            for process in processes:
                process.start()
            await asyncio.gather(*(ready(replica) for replica in replicas))
        yield Fleet(replicas, processes, admin_token, operator_token, tmp_path)
    finally:
        for process in processes:  # all told at once, then each awaited
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.stop(timeout=10)


async def open_every_breaker(
    fleet: Fleet, client: httpx.AsyncClient, s3_proxy: FaultProxy
) -> float:
    """Refuse S3 until every replica's s3 breaker is open, then heal it; when they all were."""
    s3_proxy.refuse()

    async def all_open() -> bool:
        return await fleet.breaker_states(client, "s3") == ["open"] * len(fleet.replicas)

    await eventually(all_open, "every replica's s3 breaker open", within=60)
    opened = time.monotonic()
    s3_proxy.heal()
    return opened


async def test_one_reset_closes_the_breaker_on_every_replica_at_once(
    postgres_server: PostgresServer, s3_server: S3Server, s3_proxy: FaultProxy, tmp_path: Path
) -> None:
    async with (
        running_fleet(postgres_server, s3_server, s3_proxy, tmp_path) as fleet,
        httpx.AsyncClient(timeout=5.0) as client,
    ):
        opened = await open_every_breaker(fleet, client, s3_proxy)
        # Still open with S3 back: only a reset (or the recovery timeout) closes them.
        assert await fleet.breaker_states(client, "s3") == ["open"] * 3

        # Given in reverse: the outcomes come back in key order all the same.
        outcomes = await reset_everywhere(
            client, fleet.target(), "s3", fleet.admin_token, fleet.replicas[::-1]
        )

        states = await fleet.breaker_states(client, "s3")
        closed_after = time.monotonic() - opened
        assert states == ["closed"] * 3, fleet.logs()
        assert closed_after < RECOVERY_TIMEOUT / 2, "closed by the reset, not by recovery"
        keys = sorted(replica.key for replica in fleet.replicas)
        assert [outcome.replica for outcome in outcomes] == keys
        assert all(outcome.ok for outcome in outcomes), [o.message for o in outcomes]
        assert {(o.previous_state, o.state) for o in outcomes} == {("open", "closed")}
        # Each names the process that answered (the backend's reset answer carries it).
        assert [outcome.message for outcome in outcomes] == [
            f"{key} (instance {fleet.instances[key]}) reset: open → closed" for key in keys
        ]
        assert reset_summary(outcomes) == "reset on 3/3 replicas"


async def test_a_replica_down_fails_alone_and_refusals_are_put_in_words(
    postgres_server: PostgresServer, s3_server: S3Server, s3_proxy: FaultProxy, tmp_path: Path
) -> None:
    async with (
        running_fleet(postgres_server, s3_server, s3_proxy, tmp_path) as fleet,
        httpx.AsyncClient(timeout=5.0) as client,
    ):
        target = fleet.target()
        await open_every_breaker(fleet, client, s3_proxy)
        down = fleet.replicas[1]
        fleet.processes[1].stop(timeout=10)

        outcomes = await reset_everywhere(client, target, "s3", fleet.admin_token, fleet.replicas)

        by_key = {outcome.replica: outcome for outcome in outcomes}
        failed = by_key.pop(down.key)
        assert not failed.ok
        assert failed.message == f"{down.key} could not be reached (connection refused)"
        assert [(o.ok, o.previous_state, o.state) for o in by_key.values()] == [
            (True, "open", "closed")
        ] * 2
        assert [o.instance for o in by_key.values()] == [fleet.instances[k] for k in by_key]
        live = [replica for replica in fleet.replicas if replica is not down]
        assert await fleet.breaker_states(client, "s3", live) == ["closed", "closed"]
        assert reset_summary(outcomes) == (
            f"reset on 2/3: {down.key} could not be reached (connection refused)"
        )

        # The refusals, on the two replicas still up.
        forged = fleet.admin_token[:-8] + "AAAAAAAA"
        unauthorised = await reset_everywhere(client, target, "s3", forged, live)
        assert [o.reason for o in unauthorised] == [
            "refused the token (401: missing, invalid or expired); mint a new one with "
            f"`questcity token --role admin` and set ${ADMIN_ENV}"
        ] * 2
        forbidden = await reset_everywhere(client, target, "s3", fleet.operator_token, live)
        assert [o.reason for o in forbidden] == [
            "refused the token (403: it needs the admin role); set "
            f"${ADMIN_ENV} to one minted with `questcity token --role admin`"
        ] * 2
        unknown = await reset_everywhere(client, target, "s4", fleet.admin_token, live)
        assert [o.reason for o in unknown] == ["has no breaker called 's4' (404)"] * 2
        for outcome in [*outcomes, *unauthorised, *forbidden, *unknown]:
            assert fleet.admin_token not in outcome.message
            assert fleet.operator_token not in outcome.message
            assert forged not in outcome.message
            assert outcome.message.startswith(outcome.replica)


# -- hostile answers, on a fake transport and a manual clock ----------------------------------

TARGET = Target("api", "http://a.test:8000", timeout=4.0, admin_token_env=ADMIN_ENV)
TOKEN = "eyJhbGciOiJSUzI1NiJ9.secret-admin-token.signature"
A = Replica("a.test:8000", "http://a.test:8000")
B = Replica("b.test:8000", "http://b.test:8000")
C = Replica("c.test:8000", "http://c.test:8000")
RESET = {"service": "s3", "state": "closed", "previous_state": "open"}

Handler = Callable[[httpx.Request], httpx.Response]


def by_host(**answers: Handler) -> httpx.MockTransport:
    async def handle(request: httpx.Request) -> httpx.Response:
        return answers[request.url.host.split(".")[0]](request)

    return httpx.MockTransport(handle)


def ok(request: httpx.Request) -> httpx.Response:
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.url.path == "/api/v1/health/services/s3/reset"
    return httpx.Response(200, json=RESET)


class Endless(httpx.AsyncByteStream):
    """A body as good as endless (16 MiB, so a reader without a bound ends too, and fails the
    test rather than hang it); counts what was taken of it."""

    def __init__(self) -> None:
        self.sent = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < 16 * 1024 * 1024:
            self.sent += 8192
            yield b"[" * 8192

    async def aclose(self) -> None:
        self.closed = True


async def reset_with(
    transport: httpx.AsyncBaseTransport,
    replicas: Sequence[Replica] = (A, B),
    *,
    clock: FakeClock | None = None,
) -> list[ReplicaOutcome]:
    async with httpx.AsyncClient(transport=transport) as client:
        return await reset_everywhere(
            client, TARGET, "s3", TOKEN, replicas, clock=clock or FakeClock()
        )


async def test_an_endless_answer_is_cut_off_at_the_bound_and_the_other_replica_is_reset() -> None:
    endless = Endless()
    outcomes = await reset_with(
        by_host(a=lambda request: httpx.Response(200, stream=endless), b=ok)
    )

    assert [(o.replica, o.ok) for o in outcomes] == [("a.test:8000", False), ("b.test:8000", True)]
    assert outcomes[0].message == "a.test:8000 answered 200 with more than 64 KiB"
    assert endless.sent <= MAX_ANSWER_BYTES + 8192, "read past the bound"
    assert endless.closed
    assert outcomes[1].message == "b.test:8000 reset: open → closed"


async def test_an_answer_declared_too_large_is_not_read() -> None:
    endless = Endless()
    headers = {"Content-Length": str(MAX_ANSWER_BYTES + 1)}
    outcomes = await reset_with(
        by_host(a=lambda request: httpx.Response(200, headers=headers, stream=endless), b=ok)
    )

    assert outcomes[0].reason == "answered 200 with more than 64 KiB"
    assert endless.sent == 0
    assert outcomes[1].ok


async def test_a_compressed_answer_is_refused_not_inflated() -> None:
    headers = {"Content-Encoding": "gzip"}
    outcomes = await reset_with(
        by_host(a=lambda request: httpx.Response(200, headers=headers, content=b"\x1f\x8b"), b=ok)
    )

    assert outcomes[0].reason == "answered 200 compressed (a plain answer was asked for)"
    assert outcomes[1].ok


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b"\xff\xfe",
        b"[" * 50_000,  # deeper than the interpreter's recursion limit
        b'{"state": "closed"}',
        b'{"state": "closed", "previous_state": 7}',
        b'{"state": "\\u001b[2Jclosed", "previous_state": "open"}',
        b'{"state": "' + b"c" * 500 + b'", "previous_state": "open"}',
    ],
)
async def test_a_200_without_the_expected_json_is_a_failure_in_words(body: bytes) -> None:
    outcomes = await reset_with(by_host(a=lambda request: httpx.Response(200, content=body), b=ok))

    assert outcomes[0] == ReplicaOutcome(
        "a.test:8000",
        None,
        False,
        "a.test:8000 answered 200 without the expected JSON (state words)",
        reason="answered 200 without the expected JSON (state words)",
    )
    assert outcomes[1].ok


async def test_a_backends_own_message_is_shown_short_and_without_escape_sequences() -> None:
    message = "\x1b]0;owned\x07Service Unavailable\r\n" + "x" * 10_000
    outcomes = await reset_with(
        by_host(a=lambda request: httpx.Response(503, json={"message": message}), b=ok), (A,)
    )

    (outcome,) = outcomes
    assert outcome.reason.startswith("answered 503: ]0;owned Service Unavailable xxx")
    shown = outcome.reason.removeprefix("answered 503: ")
    assert len(shown) == 200
    assert shown.endswith("…")
    assert all(c.isprintable() for c in outcome.message)


async def test_an_instance_the_answer_names_is_shown_cleaned_and_bounded() -> None:
    named = {**RESET, "instance": {"id": "api-7f9c\x1b[31m" + "z" * 300, "started_at": 1.0}}
    outcomes = await reset_with(
        by_host(a=lambda request: httpx.Response(200, json=named), b=ok), (A, B)
    )

    instance = outcomes[0].instance
    assert instance is not None
    assert instance.startswith("api-7f9c [31mzzz")
    assert len(instance) == 64
    assert outcomes[0].message == f"a.test:8000 (instance {instance}) reset: open → closed"
    assert outcomes[1].instance is None
    assert outcomes[1].message == "b.test:8000 reset: open → closed"


async def test_a_replica_that_never_answers_times_out_on_the_clock_and_holds_no_other() -> None:
    clock = FakeClock()
    answered: list[str] = []
    hanging = asyncio.Event()

    async def handle(request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        if host == "b":
            hanging.set()
            await asyncio.Event().wait()  # never
        answered.append(host)
        return httpx.Response(200, json=RESET)

    resetting = asyncio.create_task(reset_with(httpx.MockTransport(handle), (C, B, A), clock=clock))
    await hanging.wait()
    await settle()
    assert sorted(answered) == ["a", "c"], "the others were not sent at once"
    await clock.advance(3.9)
    assert not resetting.done()
    await clock.advance(0.1)  # the target's timeout
    await settle()
    assert resetting.done(), "the reset outlived its deadline"
    outcomes = resetting.result()

    assert [(o.replica, o.ok) for o in outcomes] == [
        ("a.test:8000", True),
        ("b.test:8000", False),
        ("c.test:8000", True),
    ]
    assert outcomes[1].message == "b.test:8000 did not answer within 4 s"


async def test_a_replica_with_a_broken_url_fails_alone() -> None:
    broken = Replica("d.test:0", "http://[not-an-address")
    outcomes = await reset_with(by_host(a=ok), (broken, A))

    assert [(o.replica, o.ok) for o in outcomes] == [("a.test:8000", True), ("d.test:0", False)]
    assert outcomes[1].message.startswith("d.test:0 could not be ")
    assert "not-an-address" not in outcomes[1].message


async def test_a_redirect_is_not_followed_with_the_token() -> None:
    followed: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a.test":
            return httpx.Response(307, headers={"Location": "http://evil.test/steal"})
        followed.append(str(request.url))
        return httpx.Response(200, json=RESET)

    outcomes = await reset_with(httpx.MockTransport(handle), (A,))

    assert followed == []
    assert outcomes[0].reason.startswith("answered 307 (a redirect, not followed")


@pytest.mark.parametrize("status", [200, 401, 500])
async def test_no_message_carries_the_token_even_when_the_backend_echoes_it(status: int) -> None:
    echo = {**RESET, "message": f"bad token {TOKEN}", "instance": {"id": TOKEN}}
    outcomes = await reset_with(
        by_host(a=lambda request: httpx.Response(status, json=echo), b=ok), (A, B)
    )

    for outcome in outcomes:
        assert TOKEN[:20] not in outcome.message
        assert TOKEN[:20] not in (outcome.instance or "")
    assert outcomes[0].instance == "[token]"


def test_the_summary_counts_and_names_what_failed() -> None:
    def outcome(key: str, ok: bool) -> ReplicaOutcome:
        return ReplicaOutcome(key, None, ok, f"{key} {'reset' if ok else 'refused the token'}")

    assert reset_summary([outcome("a:1", True)]) == "reset on 1/1 replica"
    assert reset_summary([outcome("a:1", True)] * 3) == "reset on 3/3 replicas"
    assert reset_summary([outcome("a:1", True), outcome("b:1", False)]) == (
        "reset on 1/2: b:1 refused the token"
    )
    many = [outcome(f"k{n}:1", False) for n in range(5)]
    assert reset_summary(many) == (
        "reset on 0/5: k0:1 refused the token; k1:1 refused the token; "
        "k2:1 refused the token; +2 more failed"
    )
    assert reset_summary([]) == "reset on no replica: the target has none"
