"""``http`` checks against a real HTTP server on 127.0.0.1 (:mod:`.http_target`), run by the
:class:`~monitor.checks.run.CheckRunner` the daemon uses: each way a front door can fail is its
own status and plain error, the request carries what the check says, the answer is bounded
(also after decompression), and a URL's user info and query never reach an outcome."""

from __future__ import annotations

import gzip
import json
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from monitor.checks.conditions import parse_condition
from monitor.checks.http import MAX_BODY_BYTES
from monitor.checks.run import CheckRunner
from monitor.checks.spec import Check, CheckKind, HttpSettings
from monitor.store.models import Status
from shared.resilience import SYSTEM_CLOCK
from shared.resilience.testing import FakeClock
from tests.monitor.checks.http_target import HttpTarget, Reply
from tests.support.polling import eventually
from tests.support.ports import free_port
from tests.support.tls_server import self_signed, validity

ALIVE = json.dumps({"status": "alive", "players": 12}).encode()
DEAD = json.dumps({"status": "dead"}).encode()


def http_check(
    url: str,
    *conditions: str,
    timeout: float = 2.0,
    **settings: object,
) -> Check:
    return Check(
        name="front-door",
        kind=CheckKind.HTTP,
        settings=HttpSettings(url=url, **settings),  # type: ignore[arg-type]
        conditions=tuple(parse_condition(text, CheckKind.HTTP) for text in conditions),
        interval=10.0,
        timeout=timeout,
    )


@pytest.fixture
async def runner() -> AsyncIterator[CheckRunner]:
    checks = CheckRunner(SYSTEM_CLOCK, environ={"QUESTCITY_X": "t0k3n-abc"})
    try:
        yield checks
    finally:
        await checks.aclose()


async def test_a_2xx_is_healthy_by_the_default_condition_and_the_connection_is_not_kept(
    runner: CheckRunner,
) -> None:
    async with HttpTarget({"/": Reply(200, b"welcome")}) as target:
        outcome = await runner.run(http_check(target.url("/")))
        await eventually(_async(lambda: bool(target.closed)), "the server saw the client's move")
        assert target.closed == [True], "a fresh connection per check, as the daemon's probes"
    assert (outcome.status, outcome.http_status, outcome.error) == (Status.HEALTHY, 200, None)
    assert [(r.condition, r.ok) for r in outcome.results] == [("[STATUS] < 400", True)]
    assert outcome.latency_ms is not None and outcome.latency_ms > 0


async def test_a_5xx_fails_the_default_condition_with_what_it_got(runner: CheckRunner) -> None:
    async with HttpTarget({"/": Reply(503, b"down")}) as target:
        outcome = await runner.run(http_check(target.url("/")))
    assert (outcome.status, outcome.http_status) == (Status.UNHEALTHY, 503)
    assert outcome.error is not None
    assert outcome.error.startswith("[STATUS] < 400") and "503" in outcome.error


async def test_written_conditions_replace_the_default(runner: CheckRunner) -> None:
    """A check that expects a 404 (a page that must stay gone) is healthy on it."""
    async with HttpTarget({}) as target:
        gone = await runner.run(http_check(target.url("/old"), "[STATUS] == 404"))
        wrong = await runner.run(http_check(target.url("/old"), "[STATUS] == 200"))
    assert gone.status is Status.HEALTHY
    assert wrong.status is Status.UNHEALTHY
    assert wrong.error is not None and "404" in wrong.error


@pytest.mark.parametrize(
    ("condition", "holds_on_alive"),
    [
        ("[BODY].status == alive", True),
        ("[BODY].players > 10", True),
        ("[BODY] == pat(*alive*)", True),
        ("[BODY].status == dead", False),
    ],
)
async def test_body_conditions_judge_the_answer(
    runner: CheckRunner, condition: str, holds_on_alive: bool
) -> None:
    async with HttpTarget({"/alive": Reply(200, ALIVE), "/dead": Reply(200, DEAD)}) as target:
        alive = await runner.run(http_check(target.url("/alive"), "[STATUS] == 200", condition))
        dead = await runner.run(http_check(target.url("/dead"), "[STATUS] == 200", condition))
    assert (alive.status is Status.HEALTHY) is holds_on_alive
    assert (dead.status is Status.HEALTHY) is not holds_on_alive
    failed = dead if holds_on_alive else alive
    assert failed.error is not None and failed.error.startswith(condition)
    assert "[STATUS] == 200" not in failed.error, "only the failed conditions are said"


async def test_a_body_condition_names_what_it_saw(runner: CheckRunner) -> None:
    async with HttpTarget({"/": Reply(200, DEAD)}) as target:
        outcome = await runner.run(http_check(target.url("/"), "[BODY].status == alive"))
    assert outcome.status is Status.UNHEALTHY
    assert outcome.error is not None and "dead" in outcome.error


async def test_a_slow_answer_fails_a_response_time_condition() -> None:
    clock = FakeClock()
    timed = CheckRunner(clock)

    async def slowly() -> None:  # 200 ms pass on the runner's clock while the server answers
        await clock.advance(0.2)

    try:
        async with HttpTarget({"/": Reply(200, b"ok", before=slowly)}) as target:
            slow = await timed.run(http_check(target.url("/"), "[RESPONSE_TIME] < 100"))
            fine = await timed.run(http_check(target.url("/"), "[RESPONSE_TIME] < 1500"))
    finally:
        await timed.aclose()
    assert slow.status is Status.UNHEALTHY
    assert slow.error is not None and slow.error.startswith("[RESPONSE_TIME] < 100")
    assert fine.status is Status.HEALTHY
    assert fine.latency_ms is not None and fine.latency_ms >= 200


async def test_a_port_nobody_listens_on_is_unreachable_refused(runner: CheckRunner) -> None:
    outcome = await runner.run(http_check(f"http://127.0.0.1:{free_port()}/"))
    assert (outcome.status, outcome.error, outcome.http_status) == (
        Status.UNREACHABLE,
        "connection refused",
        None,
    )


async def test_a_server_that_never_answers_times_out_at_the_checks_timeout(
    runner: CheckRunner,
) -> None:
    async with HttpTarget({"/": Reply(hang=True)}) as target:
        outcome = await runner.run(http_check(target.url("/"), timeout=0.3))
    assert (outcome.status, outcome.error) == (Status.UNREACHABLE, "timed out after 0.3 s")
    assert outcome.latency_ms is not None and 300 <= outcome.latency_ms < 1000


async def test_an_answer_past_the_cap_is_judged_on_its_first_mib(runner: CheckRunner) -> None:
    """Declared or not, only the first MiB is read; what is past it is never seen, and a JSON
    path into a body cut there has no value."""
    tail = b"END-OF-PAGE"
    big = b"x" * MAX_BODY_BYTES + tail
    listing = b'{"items": [' + b'"item", ' * (MAX_BODY_BYTES // 8) + b'"last"], "ok": true}'
    routes = {
        "/declared": Reply(200, big),
        "/chunked": Reply(200, chunks=[b"x" * 65536] * 16 + [tail]),
        "/json": Reply(200, listing),
    }
    async with HttpTarget(routes) as target:
        read = {
            path: await runner.run(http_check(target.url(path), "[BODY] == pat(x*)"))
            for path in ("/declared", "/chunked")
        }
        past = await runner.run(http_check(target.url("/declared"), "[BODY] == pat(*END*)"))
        cut = await runner.run(http_check(target.url("/json"), "[BODY].ok == true"))
    for path, outcome in read.items():
        assert (outcome.status, outcome.error, outcome.http_status) == (
            Status.HEALTHY,
            None,
            200,
        ), path
    assert past.status is Status.UNHEALTHY, "the tail past the first MiB is not read"
    assert cut.status is Status.UNHEALTHY
    assert cut.error is not None and cut.error.startswith("[BODY].ok == true failed")


async def test_a_compressed_answer_is_read_and_bounded_after_decompression(
    runner: CheckRunner,
) -> None:
    bomb = gzip.compress(b"\0" * (8 * MAX_BODY_BYTES))  # ~8 KiB that inflates to 8 MiB
    assert len(bomb) < 64 * 1024
    deflated = zlib.compress(ALIVE)
    raw_deflated = zlib.compress(ALIVE)[2:-4]
    routes = {
        "/gzip": Reply(200, gzip.compress(ALIVE), {"Content-Encoding": "gzip"}),
        "/deflate": Reply(200, deflated, {"Content-Encoding": "deflate"}),
        "/raw-deflate": Reply(200, raw_deflated, {"Content-Encoding": "deflate"}),
        "/bomb": Reply(200, bomb, {"Content-Encoding": "gzip"}),
        "/garbage": Reply(200, b"not gzip at all", {"Content-Encoding": "gzip"}),
        "/brotli": Reply(200, b"\x0b\x02\x80", {"Content-Encoding": "br"}),
    }
    async with HttpTarget(routes) as target:
        checked = {
            path: await runner.run(http_check(target.url(path), "[BODY].status == alive"))
            for path in routes
        }
        asked = {request.headers.get("accept-encoding") for request in target.requests}
    assert asked == {"gzip, deflate"}, "only what the check inflates itself is asked for"
    for path in ("/gzip", "/deflate", "/raw-deflate"):
        assert checked[path].status is Status.HEALTHY, path
    inflated = checked["/bomb"]
    assert inflated.status is Status.UNHEALTHY, "judged on the first MiB it inflates to"
    assert inflated.error is not None
    assert inflated.error.startswith("[BODY].status == alive failed")
    assert (checked["/garbage"].status, checked["/garbage"].error) == (
        Status.UNHEALTHY,
        "bad answer",
    )
    assert checked["/brotli"].status is Status.UNHEALTHY
    assert checked["/brotli"].error == "bad answer: unsupported content-encoding"


async def test_the_method_headers_body_and_token_are_sent(runner: CheckRunner) -> None:
    async with HttpTarget({"/api": Reply(201, b"{}")}) as target:
        check = http_check(
            target.url("/api"),
            "[STATUS] == 201",
            method="POST",
            headers={"X-Probe": "questcity", "Content-Type": "application/json"},
            body='{"ping": "ü"}',
            token_env="QUESTCITY_X",
        )
        outcome = await runner.run(check)
    assert outcome.status is Status.HEALTHY
    [request] = target.requests
    assert (request.method, request.path) == ("POST", "/api")
    assert request.headers["authorization"] == "Bearer t0k3n-abc"
    assert request.headers["x-probe"] == "questcity"
    assert request.headers["content-type"] == "application/json"
    assert request.body == '{"ping": "ü"}'.encode()


async def test_an_unset_token_variable_is_unknown_and_nothing_is_sent() -> None:
    runner = CheckRunner(SYSTEM_CLOCK, environ={"QUESTCITY_X": "   "})
    try:
        async with HttpTarget({"/": Reply(200)}) as target:
            outcome = await runner.run(http_check(target.url("/"), token_env="QUESTCITY_X"))
        assert target.requests == []
    finally:
        await runner.aclose()
    assert (outcome.status, outcome.error) == (
        Status.UNKNOWN,
        "token_env QUESTCITY_X is not set",
    )


async def test_the_urls_user_info_and_query_never_reach_an_outcome(runner: CheckRunner) -> None:
    """User info goes as Basic auth and the query to the server; neither is in what any outcome
    says, however the check ends."""
    secrets = ("s3cret-pass", "q-t0ken-9")
    userinfo = "ops:s3cret-pass"
    routes = {
        "/ok": Reply(200, b'{"status": "dead"}'),
        "/down": Reply(500, b"s3cret-pass is not the point"),
        "/big": Reply(200, b"x" * (MAX_BODY_BYTES + 1)),
        "/hang": Reply(hang=True),
    }
    async with HttpTarget(routes) as target:
        urls = [target.url(path, userinfo=userinfo) + "?token=q-t0ken-9" for path in routes]
        urls.append(f"http://{userinfo}@127.0.0.1:{free_port()}/?token=q-t0ken-9")
        outcomes = [
            await runner.run(http_check(url, "[BODY].status == alive", timeout=0.5)) for url in urls
        ]
        seen = target.requests[0]
    assert seen.headers["authorization"].startswith("Basic ")
    assert seen.query == "token=q-t0ken-9"
    assert [outcome.status for outcome in outcomes] == [
        Status.UNHEALTHY,
        Status.UNHEALTHY,
        Status.UNHEALTHY,
        Status.UNREACHABLE,
        Status.UNREACHABLE,
    ]
    for outcome in outcomes:
        assert outcome.error is not None
        said = repr(outcome) + repr(outcome.record(http_check(urls[0]), at=0.0))
        assert not any(secret in said for secret in secrets), said


async def test_redirects_are_followed_or_not_as_the_check_says(runner: CheckRunner) -> None:
    routes = {
        "/old": Reply(301, headers={"Location": "/new"}),
        "/new": Reply(200, ALIVE),
        "/loop": Reply(302, headers={"Location": "/loop"}),
    }
    async with HttpTarget(routes) as target:
        followed = await runner.run(http_check(target.url("/old"), "[BODY].status == alive"))
        paths_followed = [request.path for request in target.requests]
        target.requests.clear()
        kept = await runner.run(
            http_check(target.url("/old"), "[STATUS] == 301", follow_redirects=False)
        )
        paths_kept = [request.path for request in target.requests]
        looping = await runner.run(http_check(target.url("/loop")))
    assert (followed.status, followed.http_status) == (Status.HEALTHY, 200)
    assert paths_followed == ["/old", "/new"]
    assert (kept.status, kept.http_status) == (Status.HEALTHY, 301)
    assert paths_kept == ["/old"]
    assert (looping.status, looping.error) == (Status.UNHEALTHY, "too many redirects")


async def test_a_redirect_to_another_origin_drops_the_checks_headers_token_and_body(
    runner: CheckRunner,
) -> None:
    """Another port is another origin: the POST's secrets stay with the host the check names.
    Within the origin a 307 keeps the method, body and headers; a 303 turns into a GET."""
    async with HttpTarget({"/landing": Reply(200, ALIVE)}) as other:
        routes = {
            "/moved": Reply(307, headers={"Location": other.url("/landing")}),
            "/same": Reply(307, headers={"Location": "/echo"}),
            "/see-other": Reply(303, headers={"Location": "/echo"}),
            "/echo": Reply(200, ALIVE),
        }
        async with HttpTarget(routes) as target:

            def post(path: str) -> Check:
                return http_check(
                    target.url(path),
                    "[BODY].status == alive",
                    method="POST",
                    headers={"X-Api-Key": "s3cr3t", "Content-Type": "application/json"},
                    body='{"ping": 1}',
                    token_env="QUESTCITY_X",
                )

            outcomes = [await runner.run(post(path)) for path in ("/moved", "/same", "/see-other")]
            here = target.requests
        there = other.requests
    assert [outcome.status for outcome in outcomes] == [Status.HEALTHY] * 3
    [landed] = there
    assert (landed.method, landed.path, landed.body) == ("GET", "/landing", b"")
    for secret in ("x-api-key", "authorization", "content-type"):
        assert secret not in landed.headers, secret
    said = [(r.method, r.path, r.body, r.headers.get("x-api-key")) for r in here]
    assert said == [
        ("POST", "/moved", b'{"ping": 1}', "s3cr3t"),
        ("POST", "/same", b'{"ping": 1}', "s3cr3t"),
        ("POST", "/echo", b'{"ping": 1}', "s3cr3t"),
        ("POST", "/see-other", b'{"ping": 1}', "s3cr3t"),
        ("GET", "/echo", b"", "s3cr3t"),
    ]
    assert here[-1].headers["authorization"] == "Bearer t0k3n-abc", "same origin: kept"


async def test_a_redirect_to_another_host_name_drops_the_checks_headers() -> None:
    """The review's case (a test's network: the names are never looked up)."""
    seen: list[httpx.Request] = []

    def route(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "api.example":
            return httpx.Response(302, headers={"Location": "https://evil.example/steal"})
        return httpx.Response(200)

    runner = CheckRunner(
        SYSTEM_CLOCK, transport=httpx.MockTransport(route), environ={"TOK": "bearer-secret"}
    )
    try:
        check = http_check(
            "https://api.example/health", headers={"X-Api-Key": "s3cr3t"}, token_env="TOK"
        )
        outcome = await runner.run(check)
    finally:
        await runner.aclose()
    assert outcome.status is Status.HEALTHY
    assert [str(request.url) for request in seen] == [
        "https://api.example/health",
        "https://evil.example/steal",
    ]
    assert seen[0].headers["x-api-key"] == "s3cr3t"
    assert "x-api-key" not in seen[1].headers
    assert "authorization" not in seen[1].headers


async def test_at_most_ten_redirects_are_followed(runner: CheckRunner) -> None:
    routes = {f"/r{i}": Reply(302, headers={"Location": f"/r{i + 1}"}) for i in range(11)}
    routes["/r11"] = Reply(200, b"there")
    routes["/elsewhere"] = Reply(302, headers={"Location": "ftp://127.0.0.1/file"})
    async with HttpTarget(routes) as target:
        ten = await runner.run(http_check(target.url("/r1")))
        eleven = await runner.run(http_check(target.url("/r0")))
        elsewhere = await runner.run(http_check(target.url("/elsewhere")))
    assert (ten.status, ten.http_status) == (Status.HEALTHY, 200)
    assert (eleven.status, eleven.error, eleven.http_status) == (
        Status.UNHEALTHY,
        "too many redirects",
        302,
    )
    assert (elsewhere.status, elsewhere.error) == (
        Status.UNHEALTHY,
        "bad answer: a redirect to a URL that cannot be requested",
    )


async def test_a_host_name_that_does_not_resolve_is_unreachable(runner: CheckRunner) -> None:
    outcome = await runner.run(http_check("http://ops:pw@no-such-host.invalid/?token=x"))
    assert (outcome.status, outcome.error) == (Status.UNREACHABLE, "name does not resolve")


async def test_an_answer_cut_short_is_a_bad_answer(runner: CheckRunner) -> None:
    short = Reply(200, b"ok", headers={"Content-Length": "100"}, close=True)
    async with HttpTarget({"/": short}) as target:
        outcome = await runner.run(http_check(target.url("/")))
    assert (outcome.status, outcome.error, outcome.http_status) == (
        Status.UNHEALTHY,
        "bad answer",
        None,
    )


def tls_context(tmp_path: Path, days: float) -> tuple[ssl.SSLContext, Path]:
    cert_pem, key_pem = self_signed(("localhost", "127.0.0.1"), *validity(days))
    ca_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_file.write_bytes(cert_pem)
    key_file.write_bytes(key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(ca_file, key_file)
    return context, ca_file


async def test_https_with_a_certificate_nobody_trusts_fails_the_handshake(
    runner: CheckRunner, tmp_path: Path
) -> None:
    context, _ca_file = tls_context(tmp_path, days=40)
    async with HttpTarget({"/": Reply(200, b"ok")}, ssl_context=context) as target:
        outcome = await runner.run(http_check(target.url("/")))
    assert outcome.status is Status.UNHEALTHY
    assert outcome.error is not None
    assert outcome.error.startswith("certificate not valid: self")  # self-signed certificate
    assert "127.0.0.1" not in outcome.error


async def test_https_trusting_the_ca_file_reads_the_certificates_expiry(
    runner: CheckRunner, tmp_path: Path
) -> None:
    context, ca_file = tls_context(tmp_path, days=40)
    async with HttpTarget({"/": Reply(200, b"ok")}, ssl_context=context) as target:
        far = await runner.run(
            http_check(target.url("/"), "[CERTIFICATE_EXPIRATION] > 720h", ca_file=str(ca_file))
        )
        near = await runner.run(
            http_check(target.url("/"), "[CERTIFICATE_EXPIRATION] > 1000h", ca_file=str(ca_file))
        )
    assert far.status is Status.HEALTHY, far.error
    assert near.status is Status.UNHEALTHY


async def test_an_expired_certificate_is_said_by_the_handshake(
    runner: CheckRunner, tmp_path: Path
) -> None:
    context, ca_file = tls_context(tmp_path, days=-2)
    async with HttpTarget({"/": Reply(200, b"ok")}, ssl_context=context) as target:
        outcome = await runner.run(http_check(target.url("/"), ca_file=str(ca_file)))
    assert (outcome.status, outcome.error) == (
        Status.UNHEALTHY,
        "certificate not valid: certificate has expired",
    )


async def test_a_ca_file_that_cannot_be_read_is_unknown(
    runner: CheckRunner, tmp_path: Path
) -> None:
    outcome = await runner.run(
        http_check("https://127.0.0.1:1/", ca_file=str(tmp_path / "missing.pem"))
    )
    assert (outcome.status, outcome.error) == (
        Status.UNKNOWN,
        "ca_file cannot be read as PEM certificates",
    )


def _async(predicate: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return predicate()

    return check


async def test_behind_a_proxy_no_proxy_is_matched_on_the_name_not_the_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy in the environment (dead here) that this name is exempt from: the request goes
    direct, as httpx decides on the name (pinned to the address, NO_PROXY would not match and
    the request would go to the dead proxy)."""
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("NO_PROXY", "localhost")
    checks = CheckRunner(SYSTEM_CLOCK)
    try:
        async with HttpTarget({"/": Reply(200, b"welcome")}) as target:
            outcome = await checks.run(http_check(f"http://localhost:{target.port}/"))
    finally:
        await checks.aclose()
    assert (outcome.status, outcome.error) == (Status.HEALTHY, None)
