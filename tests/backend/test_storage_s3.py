"""The S3 adapter against a real S3 server (SeaweedFS), and against servers that misbehave.

The contract suite runs over the ``s3_server`` fixture (tests/conftest.py). Network faults come
from the ``s3_proxy`` fault proxy in front of that server (refuse, blackhole, reset) and from
killing the server; S3 error answers (503 SlowDown with Retry-After, 5xx, 429, 403) from a small
local HTTP server written here. Every error must translate into the ObjectStoreError tree, with no
host, port or credential in its text or traceback, after one attempt (botocore's retries are off).
"""

from __future__ import annotations

import asyncio
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)

from backend.settings import Settings
from backend.storage import (
    ObjectNotFound,
    ObjectStoreError,
    ObjectStoreNotConfigured,
    ObjectStoreUnavailable,
    S3ObjectStore,
)
from backend.storage.s3 import translate_error
from shared.resilience import RetryConfig, RetryPolicy
from shared.resilience.testing import FakeClock
from tests.backend.object_store_contract import ObjectStoreContract
from tests.support import FaultProxy, S3Server


def _bucket() -> str:
    return f"test-{uuid.uuid4().hex[:20]}"


def _store(
    endpoint_url: str,
    *,
    bucket: str | None = None,
    access_key: str = "test-access-key",
    secret_key: str = "test-secret-key",
    connect_timeout: float = 1.0,
    read_timeout: float = 2.0,
) -> S3ObjectStore:
    return S3ObjectStore(
        endpoint_url=endpoint_url,
        bucket=bucket or _bucket(),
        access_key=access_key,
        secret_key=secret_key,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )


def _real_store(s3_server: S3Server, bucket: str | None = None) -> S3ObjectStore:
    return _store(
        s3_server.endpoint_url,
        bucket=bucket,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
    )


def assert_nothing_internal(error: BaseException, *secrets: str) -> None:
    """Neither the message nor the printed traceback names the host, the port or a secret."""
    text = str(error) + "".join(traceback.format_exception(error))
    for secret in ("127.0.0.1", "localhost", "http://", *secrets):
        assert secret not in text, f"{secret!r} leaked into: {text}"


# -- the contract, against the real server -------------------------------------------------------


@pytest.fixture
async def store(s3_server: S3Server) -> AsyncIterator[S3ObjectStore]:
    async with _real_store(s3_server) as opened:
        await opened.ensure_bucket()
        yield opened


class TestS3Contract(ObjectStoreContract):
    pass


# -- the real server: buckets, settings, life cycle ------------------------------------------------


async def test_ensure_bucket_creates_a_missing_bucket(s3_server: S3Server) -> None:
    async with _real_store(s3_server) as store:
        with pytest.raises(ObjectStoreError) as caught:
            await store.ping()
        assert type(caught.value) is ObjectStoreError  # a missing bucket: neither retried nor 404
        assert str(caught.value) == "object store error: the bucket does not exist"

        await store.ensure_bucket()
        await store.ensure_bucket()

        await store.ping()


async def test_two_stores_racing_to_create_the_bucket_both_succeed(
    s3_server: S3Server,
) -> None:
    bucket = _bucket()
    async with _real_store(s3_server, bucket) as one, _real_store(s3_server, bucket) as two:
        await asyncio.gather(one.ensure_bucket(), two.ensure_bucket())

        await one.put("k", b"from one", "text/plain")
        assert (await two.get("k")).data == b"from one"


async def test_get_from_a_missing_bucket_is_an_error_not_not_found(
    s3_server: S3Server,
) -> None:
    # (A put may succeed: SeaweedFS creates buckets on upload for admin identities.)
    async with _real_store(s3_server) as store:
        with pytest.raises(ObjectStoreError) as caught:
            await store.get("k")

    assert type(caught.value) is ObjectStoreError
    assert str(caught.value) == "object store error: the bucket does not exist"


async def test_a_megabyte_round_trips(store: S3ObjectStore) -> None:
    data = bytes(range(256)) * 4096

    await store.put("covers/q/big.webp", data, "image/webp")

    assert (await store.get("covers/q/big.webp")).data == data


async def test_from_settings(s3_server: S3Server) -> None:
    settings = Settings(
        s3_endpoint_url=s3_server.endpoint_url,
        s3_bucket=_bucket(),
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
    )
    async with S3ObjectStore.from_settings(settings) as store:
        assert store.bucket == settings.s3_bucket
        await store.ensure_bucket()
        await store.put("avatars/u/1.png", b"\x89PNG\r\n\x1a\n", "image/png")
        assert (await store.get("avatars/u/1.png")).content_type == "image/png"


def test_from_settings_without_an_endpoint_is_not_configured() -> None:
    with pytest.raises(ObjectStoreNotConfigured, match="QUESTCITY_S3_ENDPOINT_URL"):
        S3ObjectStore.from_settings(Settings())


async def test_wrong_secret_is_an_error_that_is_not_retried(s3_server: S3Server) -> None:
    async with _store(
        s3_server.endpoint_url, access_key=s3_server.access_key, secret_key="not-the-secret"
    ) as store:
        with pytest.raises(ObjectStoreError) as caught:
            await store.get("k")

    assert not isinstance(caught.value, ConnectionError)
    assert "HTTP 403" in str(caught.value)
    assert_nothing_internal(caught.value, "not-the-secret", s3_server.access_key)


async def test_life_cycle(s3_server: S3Server) -> None:
    store = _real_store(s3_server)
    assert "test-" in repr(store)
    assert s3_server.secret_key not in repr(store)
    with pytest.raises(RuntimeError, match="start"):
        await store.ping()

    await asyncio.gather(store.start(), store.start())  # one client, not two (none leaks)
    await store.start()  # once is enough; again does nothing
    await store.ensure_bucket()
    await store.close()
    await store.close()

    with pytest.raises(RuntimeError, match="closed"):
        await store.ping()
    with pytest.raises(RuntimeError, match="closed"):
        await store.start()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"connect_timeout": 0.0},
        {"read_timeout": -1.0},
        {"read_timeout": float("inf")},
        {"bucket": ""},
    ],
)
def test_bad_construction_arguments(kwargs: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {
        "endpoint_url": "http://127.0.0.1:9",
        "bucket": "b",
        "access_key": "a",
        "secret_key": "s",
        **kwargs,
    }
    with pytest.raises(ValueError, match="S3ObjectStore"):
        S3ObjectStore(**arguments)


# -- faults between us and the real server (the fault proxy) -------------------------------------

FAULT_DEADLINE = 10.0
"""Bound on every call under a fault: a regression fails the test instead of hanging it."""


@pytest.fixture
async def proxied(s3_server: S3Server, s3_proxy: FaultProxy) -> AsyncIterator[S3ObjectStore]:
    """A store that reaches the real server through the proxy, with short timeouts."""
    async with _store(
        s3_proxy.url(),
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        connect_timeout=0.5,
        read_timeout=0.3,
    ) as store:
        await store.ensure_bucket()
        await store.put("k", b"before the fault", "text/plain")
        yield store


async def _fails_unavailable(call: Callable[[], Awaitable[object]]) -> ObjectStoreUnavailable:
    async with asyncio.timeout(FAULT_DEADLINE):
        with pytest.raises(ObjectStoreUnavailable) as caught:
            await call()
    return caught.value


def _calls(store: S3ObjectStore) -> list[Callable[[], Awaitable[object]]]:
    return [
        store.ping,
        lambda: store.get("k"),
        lambda: store.put("k2", b"during the fault", "text/plain"),
        # Not "k": a request held by a blackhole still reaches the server after the heal
        # (a timed-out call may have happened all the same).
        lambda: store.delete("k3"),
    ]


async def _works_again(store: S3ObjectStore) -> None:
    await store.ping()
    assert (await store.get("k")).data == b"before the fault"


async def test_refused_is_unavailable_fast_and_heals(
    proxied: S3ObjectStore, s3_proxy: FaultProxy, s3_server: S3Server
) -> None:
    s3_proxy.refuse()

    for call in _calls(proxied):
        started = time.monotonic()
        error = await _fails_unavailable(call)
        assert time.monotonic() - started < 0.5  # one attempt: botocore's retries are off
        assert str(error) in (
            "object store unavailable: EndpointConnectionError (Connection refused)",
            # a pooled connection reset by the switch, met before the refused new one
            "object store unavailable: ConnectionClosedError (Connection reset by peer)",
        )
        assert error.retry_after is None
        assert_nothing_internal(error, str(s3_proxy.port), str(s3_server.port))

    s3_proxy.heal()
    await _works_again(proxied)


async def test_blackhole_is_unavailable_within_the_read_timeout_and_heals(
    proxied: S3ObjectStore, s3_proxy: FaultProxy, s3_server: S3Server
) -> None:
    s3_proxy.blackhole()

    # The upload too: without Expect: 100-continue (see s3.py), aiohttp's read timeout would
    # never start on a server that took the headers and went silent.
    for call in _calls(proxied):
        started = time.monotonic()
        error = await _fails_unavailable(call)
        elapsed = time.monotonic() - started
        assert 0.25 <= elapsed < 2.0, elapsed
        assert str(error) == "object store unavailable: ReadTimeoutError (timed out)"
        assert_nothing_internal(error, str(s3_proxy.port), str(s3_server.port))

    s3_proxy.heal()
    await _works_again(proxied)


async def test_reset_is_unavailable_and_heals(
    proxied: S3ObjectStore, s3_proxy: FaultProxy, s3_server: S3Server
) -> None:
    s3_proxy.reset()

    for call in _calls(proxied):
        error = await _fails_unavailable(call)
        assert str(error).startswith("object store unavailable: ")
        assert_nothing_internal(error, str(s3_proxy.port), str(s3_server.port))

    s3_proxy.heal()
    await _works_again(proxied)


async def test_server_killed_then_back(s3_server: S3Server) -> None:
    async with _real_store(s3_server) as store:
        await store.ensure_bucket()
        await store.put("k", b"before the fault", "text/plain")

        s3_server.kill()
        error = await _fails_unavailable(store.ping)
        assert_nothing_internal(error, str(s3_server.port))

        s3_server.start()  # same port, same data
        # A pooled connection to the dead server may fail once more, and SeaweedFS answers 500
        # for a moment while its volume server registers again: what the retry policy is for.
        # Its default retry_on retries ObjectStoreUnavailable (a ConnectionError).
        policy = RetryPolicy(
            RetryConfig(max_attempts=50, base_delay=0.05, max_delay=0.2, timeout=15.0),
            name="s3-test",
        )
        await policy.call(_works_again, store)


# -- a server that answers with S3 errors ----------------------------------------------------------


class S3ErrorServer:
    """A local HTTP server answering every request with one S3 error document."""

    def __init__(self, status: int, code: str, headers: dict[str, str] | None = None) -> None:
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            "<Message>Internal detail: node 10.9.8.7 is overloaded</Message>"
            "<Resource>/bucket/key</Resource><RequestId>1</RequestId></Error>"
        ).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self._head = (
            f"HTTP/1.1 {status} Error\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(self._body)}\r\n{extra}Connection: close\r\n\r\n"
        ).encode()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length" and int(value):
                    await reader.readexactly(int(value))
            self.requests += 1
            writer.write(self._head + self._body)
            await writer.drain()
        finally:
            writer.close()

    async def __aenter__(self) -> S3ErrorServer:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.port: int = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


async def test_slow_down_is_unavailable_with_the_servers_retry_after() -> None:
    async with (
        S3ErrorServer(503, "SlowDown", {"Retry-After": "7"}) as server,
        _store(server.endpoint_url) as store,
    ):
        error = await _fails_unavailable(lambda: store.get("covers/1/a.png"))

    assert str(error) == "object store unavailable: SlowDown (HTTP 503)"
    assert error.retry_after == 7.0
    assert server.requests == 1  # botocore alone would have retried a 503 twice more
    assert_nothing_internal(error, str(server.port), "10.9.8.7", "covers/1/a.png")


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "InternalError"), (502, "BadGateway"), (503, "ServiceUnavailable"), (429, "TooMany")],
)
async def test_server_errors_and_throttling_are_unavailable(status: int, code: str) -> None:
    async with S3ErrorServer(status, code) as server, _store(server.endpoint_url) as store:
        error = await _fails_unavailable(lambda: store.put("k", b"v", "text/plain"))

    assert str(error) == f"object store unavailable: {code} (HTTP {status})"
    assert server.requests == 1


async def test_access_denied_is_an_error_that_is_not_retried() -> None:
    async with S3ErrorServer(403, "AccessDenied") as server, _store(server.endpoint_url) as store:
        with pytest.raises(ObjectStoreError) as caught:
            await store.get("k")

    assert type(caught.value) is ObjectStoreError
    assert str(caught.value) == "object store error: AccessDenied (HTTP 403)"
    assert server.requests == 1


# -- translation, one driver exception at a time --------------------------------------------------


def client_error(
    code: str | None, status: int, headers: dict[str, str] | None = None
) -> ClientError:
    response: dict[str, Any] = {
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
    }
    if code is not None:
        response["Error"] = {"Code": code, "Message": "secret detail at http://10.0.0.1:9000"}
    return ClientError(response, "GetObject")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "key", "expected", "text"),
    [
        (client_error("NoSuchKey", 404), "k", ObjectNotFound, "object not found"),
        (client_error("404", 404), "k", ObjectNotFound, "object not found"),
        (
            client_error("404", 404),
            None,
            ObjectStoreError,
            "object store error: the bucket does not exist",
        ),
        (
            client_error("NoSuchBucket", 404),
            "k",
            ObjectStoreError,
            "object store error: the bucket does not exist",
        ),
        (client_error("403", 403), None, ObjectStoreError, "object store error: HTTP 403"),
        (
            client_error("NotImplemented", 501),
            "k",
            ObjectStoreError,
            "object store error: NotImplemented (HTTP 501)",
        ),
        (
            client_error("RequestTimeout", 400),
            "k",
            ObjectStoreUnavailable,
            "object store unavailable: RequestTimeout (HTTP 400)",
        ),
        (
            client_error("<script>http://10.0.0.1</script>", 503),
            "k",
            ObjectStoreUnavailable,
            "object store unavailable: HTTP 503",
        ),
        (
            EndpointConnectionError(endpoint_url="http://10.0.0.1:9000/bucket"),
            None,
            ObjectStoreUnavailable,
            "object store unavailable: EndpointConnectionError",
        ),
        (
            ConnectTimeoutError(endpoint_url="http://10.0.0.1:9000/bucket"),
            None,
            ObjectStoreUnavailable,
            "object store unavailable: ConnectTimeoutError",
        ),
        (
            ReadTimeoutError(endpoint_url="http://10.0.0.1:9000/bucket"),
            None,
            ObjectStoreUnavailable,
            "object store unavailable: ReadTimeoutError",
        ),
        (
            TimeoutError(),
            None,
            ObjectStoreUnavailable,
            "object store unavailable: TimeoutError (timed out)",
        ),
        (
            ConnectionResetError(104, "Connection reset by peer 10.0.0.1:9000"),
            None,
            ObjectStoreUnavailable,
            "object store unavailable: ConnectionResetError (Connection reset by peer)",
        ),
        (
            ParamValidationError(report="Bucket http://10.0.0.1 invalid"),
            None,
            ObjectStoreError,
            "object store error: ParamValidationError",
        ),
    ],
)
def test_translation(
    error: BaseException, key: str | None, expected: type[ObjectStoreError], text: str
) -> None:
    translated = translate_error(error, key=key)

    assert type(translated) is expected
    assert str(translated) == text
    assert "10.0.0.1" not in str(translated)


def test_translation_reads_retry_after_as_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    error = client_error("SlowDown", 503, {"retry-after": format_datetime(when, usegmt=True)})

    translated = translate_error(error)

    assert isinstance(translated, ObjectStoreUnavailable)
    assert translated.retry_after is not None
    assert 25 < translated.retry_after <= 30


def test_an_http_date_retry_after_is_counted_from_the_injected_clock() -> None:
    clock = FakeClock(wall_start=1_700_000_000.0)
    when = datetime.fromtimestamp(1_700_000_000 + 42, UTC)
    error = client_error("SlowDown", 503, {"Retry-After": format_datetime(when, usegmt=True)})

    translated = translate_error(error, clock=clock)

    assert isinstance(translated, ObjectStoreUnavailable)
    assert translated.retry_after == 42.0


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan", "inf"])
def test_translation_ignores_unusable_retry_after(value: str) -> None:
    translated = translate_error(client_error("SlowDown", 503, {"Retry-After": value}))

    assert isinstance(translated, ObjectStoreUnavailable)
    assert translated.retry_after is None


def test_translation_keeps_our_own_errors() -> None:
    error = ObjectNotFound("k")

    assert translate_error(error) is error
