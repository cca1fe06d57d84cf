"""``questcity breaker reset TARGET SERVICE``, run as a process the way a script runs it.

Against three real backend processes (one key directory, one PostgreSQL database, S3 behind a
fault proxy): the three s3 breakers opened by S3 refusing are closed by one command, one line per
replica and exit 0; with one replica down its line says FAILED and the command exits 1 while the
others are still reset. What stops it before any request (exit 2): an unknown target, no admin
token, DNS failing, a name that resolves to no address.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.monitor.test_reset_fleet import ADMIN_ENV, open_every_breaker, running_fleet
from tests.support import FaultProxy, PostgresServer, S3Server
from tests.support.dns_server import DNSServer
from tests.support.ports import free_port


@dataclass(frozen=True)
class Ran:
    code: int
    out: list[str]
    err: str


async def breaker_reset(
    *args: str, config: Path, token: str | None = "unused", env: dict[str, str] | None = None
) -> Ran:
    environ = {k: v for k, v in os.environ.items() if k != ADMIN_ENV}
    if token is not None:
        environ[ADMIN_ENV] = token
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "questcity", "breaker", "reset", *args, "--config", str(config)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**environ, **(env or {})},
        stdin=asyncio.subprocess.DEVNULL,  # it asks nothing
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode().splitlines(), err.decode())


def write_config(
    tmp_path: Path, replicas: list[str], *, url: str | None = None, extra: str = ""
) -> Path:
    listed = ", ".join(f'"{url}"' for url in replicas)
    path = tmp_path / "monitor.toml"
    path.write_text(
        f"""
[storage]
url = "sqlite:///{tmp_path}/monitor.db"
{extra}
[[targets]]
name = "questcity-api"
url = "{url or replicas[0]}"
admin_token_env = "{ADMIN_ENV}"
replicas = [{listed}]

[[targets]]
name = "payments"
url = "http://127.0.0.1:9"
""",
        encoding="utf-8",
    )
    return path


async def test_the_command_resets_every_replica_and_exits_1_when_one_is_down(
    postgres_server: PostgresServer, s3_server: S3Server, s3_proxy: FaultProxy, tmp_path: Path
) -> None:
    async with (
        running_fleet(postgres_server, s3_server, s3_proxy, tmp_path) as fleet,
        httpx.AsyncClient(timeout=5.0) as client,
    ):
        config = write_config(tmp_path, [replica.url for replica in fleet.replicas])
        keys = sorted(replica.key for replica in fleet.replicas)
        await open_every_breaker(fleet, client, s3_proxy)

        ran = await breaker_reset("questcity-api", "s3", config=config, token=fleet.admin_token)

        assert ran.code == 0, ran
        reset = {
            key: f"{key}  ok      open → closed  (instance {fleet.instances[key]})" for key in keys
        }
        assert ran.out == [reset[key] for key in keys]
        assert ran.err == "questcity breaker reset: s3 of questcity-api: reset on 3/3 replicas\n"
        assert await fleet.breaker_states(client, "s3") == ["closed"] * 3

        await open_every_breaker(fleet, client, s3_proxy)
        down = fleet.replicas[2]
        fleet.processes[2].stop(timeout=10)

        ran = await breaker_reset("questcity-api", "s3", config=config, token=fleet.admin_token)

        assert ran.code == 1, ran
        failed = f"{down.key}  FAILED  could not be reached (connection refused)"
        assert ran.out == [failed if key == down.key else reset[key] for key in keys]
        assert ran.err == (
            "questcity breaker reset: s3 of questcity-api: reset on 2/3: "
            f"{down.key} could not be reached (connection refused)\n"
        )
        live = [replica for replica in fleet.replicas if replica is not down]
        assert await fleet.breaker_states(client, "s3", live) == ["closed"] * 2

        ran = await breaker_reset("questcity-api", "s3", config=config, token=fleet.operator_token)

        assert ran.code == 1
        assert [line.split("  ")[1] for line in ran.out] == ["FAILED"] * 3
        assert all(fleet.operator_token not in line for line in [*ran.out, ran.err])


async def test_an_unknown_target_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    config = write_config(tmp_path, ["http://127.0.0.1:9"])

    ran = await breaker_reset("questcity-apj", "s3", config=config)

    assert (ran.code, ran.out) == (2, [])
    assert ran.err == (
        f"questcity breaker reset: no target called 'questcity-apj' in {config}; "
        "its targets: questcity-api, payments\n"
    )


async def test_no_admin_token_is_refused_saying_how_to_mint_one(tmp_path: Path) -> None:
    config = write_config(tmp_path, ["http://127.0.0.1:9"])

    unset = await breaker_reset("questcity-api", "s3", config=config, token=None)
    blank = await breaker_reset("questcity-api", "s3", config=config, token="  ")
    no_env = await breaker_reset("payments", "s3", config=config)

    for ran in (unset, blank):
        assert (ran.code, ran.out) == (2, [])
        assert ran.err == (
            f"questcity breaker reset: ${ADMIN_ENV} (the admin token of questcity-api) is not "
            f"set: export {ADMIN_ENV}=$(questcity token --role admin)\n"
        )
    assert (no_env.code, no_env.out) == (2, [])
    assert no_env.err == (
        "questcity breaker reset: target payments has no admin token: add admin_token_env = "
        f'"QUESTCITY_ADMIN_TOKEN" to its [[targets]] table in {config}, then export '
        "QUESTCITY_ADMIN_TOKEN=$(questcity token --role admin)\n"
    )


async def test_dns_failing_is_refused_with_its_words(tmp_path: Path) -> None:
    silent = free_port()  # nothing answers there: every lookup times out
    config = write_config(
        tmp_path,
        ["dns:questcity-api-headless.test:8000"],
        url="http://questcity-api.test:8000",
        extra=f'[dns]\nnameservers = ["127.0.0.1:{silent}"]\n',
    )

    ran = await breaker_reset("questcity-api", "s3", config=config)

    assert (ran.code, ran.out) == (2, [])
    assert ran.err.startswith(
        "questcity breaker reset: cannot find the replicas of questcity-api: "
    ), ran.err
    assert ran.err.count("\n") == 1
    assert "Traceback" not in ran.err


async def test_a_name_with_no_address_is_refused_as_nothing_to_reset(tmp_path: Path) -> None:
    """An empty DNS answer (every pod gone, or the service not there yet) leaves nothing to try:
    exit 2, as for DNS failing, never 1 ("some replica did not reset")."""
    server = DNSServer()  # knows no name: NXDOMAIN, an empty answer
    await server.start()
    try:
        config = write_config(
            tmp_path,
            ["dns:questcity-api-headless.test:8000"],
            url="http://questcity-api.test:8000",
            extra=f'[dns]\nnameservers = ["127.0.0.1:{server.port}"]\n',
        )

        ran = await breaker_reset("questcity-api", "s3", config=config)
    finally:
        server.stop()

    assert server.questions  # it did look
    assert (ran.code, ran.out) == (2, [])
    assert ran.err == (
        "questcity breaker reset: no replicas of questcity-api to reset: "
        "dns:questcity-api-headless.test:8000 resolves to no address\n"
    )


async def test_a_bad_config_is_refused_before_anything(tmp_path: Path) -> None:
    ran = await breaker_reset("questcity-api", "s3", config=tmp_path / "missing.toml")

    assert (ran.code, ran.out) == (2, [])
    assert "missing.toml: no such file" in ran.err


class _Recorder:
    """An HTTP server that records each request's X-QuestCity-Actor and answers 404 (the
    outcome does not matter here: who was named does)."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.actors: list[str | None] = []
        actors = self.actors

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                actors.append(self.headers.get("X-QuestCity-Actor"))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_the_reset_names_the_person_by_default_the_account_and_by_with_by(
    tmp_path: Path,
) -> None:
    """The audit line says who reset, not only "questcity-cli": ``--by NAME``, else the local
    account's name; a name outside ASCII travels percent-encoded (the backend decodes it)."""
    receiver = _Recorder()
    try:
        config = write_config(tmp_path, [receiver.url])
        by_default = await breaker_reset(
            "questcity-api", "s3", config=config, env={"LOGNAME": "alice\x1b[2J"}
        )
        named = await breaker_reset("questcity-api", "s3", "--by", "Zoë", config=config)
        blank = await breaker_reset("questcity-api", "s3", "--by", "\t ", config=config)
    finally:
        receiver.close()
    assert by_default.code == named.code == 1  # (the receiver answers 404)
    assert receiver.actors == ["alice[2J", "Zo%C3%AB"]
    assert blank.code == 2
    assert "--by needs a name" in blank.err
