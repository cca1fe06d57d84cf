"""The S3 adapter: :class:`~backend.storage.object_store.ObjectStore` on aiobotocore.

One long-lived client per process, opened by :meth:`S3ObjectStore.start` and closed by
:meth:`S3ObjectStore.close`. Path-style addressing (MinIO, SeaweedFS), short connect and read
timeouts, and botocore's own retries off: retries, breakers and deadlines are the policy library's
job, and two retry layers would multiply each other.

Every botocore and aiohttp exception is translated here into the
:mod:`backend.storage.object_store` tree (see :func:`translate_error`); nothing above this module
sees a driver exception. The translated error is raised ``from None``: driver messages carry the
endpoint URL, and a chained cause would print it in every traceback.
"""

from __future__ import annotations

import asyncio
import errno as errno_names
import logging
import math
import os
import re
from collections.abc import Mapping
from contextlib import AsyncExitStack
from datetime import UTC
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from backend.settings import Settings
from backend.storage.object_store import (
    ObjectNotFound,
    ObjectStoreError,
    ObjectStoreNotConfigured,
    ObjectStoreUnavailable,
    StoredObject,
)
from shared.resilience import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.literals import BucketLocationConstraintType

logger = logging.getLogger("backend.storage.s3")

DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_MAX_POOL_CONNECTIONS = 20

DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    BotoCoreError,
    ClientError,
    aiohttp.ClientError,
    OSError,  # TimeoutError (and so asyncio.TimeoutError) is an OSError
)
"""What the driver may raise; each is translated by :func:`translate_error`."""

_UNAVAILABLE_DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    BotoConnectionError,  # EndpointConnectionError, ConnectTimeoutError, SSLError, proxy errors
    HTTPClientError,  # ConnectionClosedError, ReadTimeoutError, ResponseStreamingError
    IncompleteReadError,
    aiohttp.ClientError,
    OSError,
)

_UNAVAILABLE_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "BandwidthLimitExceeded",
        "XMinioServerNotInitialized",
    }
)
"""S3 error codes that mean "not now" rather than "no": worth another try later."""

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
_BUCKET_EXISTS_CODES = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
_SAFE_CODE = re.compile(r"[A-Za-z0-9._-]{1,64}")


class S3ObjectStore:
    """An object store in one bucket of an S3-compatible server.

    ``await start()`` (or ``async with``) before the first call; ``await close()`` at shutdown.
    Creating the store does no I/O. :meth:`start` does no network I/O either (it loads botocore's
    S3 model from disk); the first request connects.
    """

    def __init__(
        self,
        *,
        endpoint_url: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_pool_connections: int = DEFAULT_MAX_POOL_CONNECTIONS,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        for label, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"S3ObjectStore.{label} must be a number > 0, got {value!r}")
        if max_pool_connections < 1:
            raise ValueError("S3ObjectStore.max_pool_connections must be >= 1")
        if not bucket:
            raise ValueError("S3ObjectStore.bucket must not be empty")
        self._endpoint_url = endpoint_url
        self._bucket = bucket
        self._access_key = access_key
        self._secret_key = secret_key
        self._region = region
        self._clock = clock
        self._config = AioConfig(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_pool_connections,
            retries={"mode": "standard", "total_max_attempts": 1},
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            # Checksums only where S3 requires them: S3-compatible servers differ in their
            # support for the newer default (CRC trailers on every upload).
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._stack: AsyncExitStack | None = None
        self._client: S3Client | None = None
        self._closed = False
        self._start_lock = asyncio.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_pool_connections: int = DEFAULT_MAX_POOL_CONNECTIONS,
        clock: Clock = SYSTEM_CLOCK,
    ) -> S3ObjectStore:
        """The store the settings describe; :class:`ObjectStoreNotConfigured` when they describe
        none (``QUESTCITY_S3_ENDPOINT_URL`` unset)."""
        if not settings.s3_endpoint_url:
            raise ObjectStoreNotConfigured(
                "object storage is not configured (QUESTCITY_S3_ENDPOINT_URL is not set)"
            )
        if not (settings.s3_access_key and settings.s3_secret_key):
            raise ObjectStoreNotConfigured(
                "object storage needs QUESTCITY_S3_ACCESS_KEY and QUESTCITY_S3_SECRET_KEY"
            )
        return cls(
            endpoint_url=settings.s3_endpoint_url,
            bucket=settings.s3_bucket,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            region=settings.s3_region,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_pool_connections,
            clock=clock,
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._client is not None else "new"
        return f"<S3ObjectStore bucket={self._bucket!r} {state}>"

    @property
    def bucket(self) -> str:
        return self._bucket

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the client (once; later calls do nothing)."""
        if self._closed:
            raise RuntimeError("S3ObjectStore is closed; create a new one")
        async with self._start_lock:
            if self._client is None and not self._closed:
                await self._open()

    async def _open(self) -> None:
        stack = AsyncExitStack()
        session = AioSession()
        try:
            client: S3Client = await stack.enter_async_context(
                session.create_client(
                    "s3",
                    endpoint_url=self._endpoint_url,
                    region_name=self._region,
                    aws_access_key_id=self._access_key,
                    aws_secret_access_key=self._secret_key,
                    config=self._config,
                )
            )
        except BaseException:
            await stack.aclose()
            raise
        client.meta.events.register("before-send.s3", _drop_expect_continue)
        self._stack, self._client = stack, client

    async def close(self) -> None:
        """Close the client and its connections. Idempotent."""
        self._closed = True
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _require_client(self) -> S3Client:
        client = self._client
        if client is None:
            if self._closed:
                raise RuntimeError("S3ObjectStore is closed")
            raise RuntimeError("S3ObjectStore.start() has not been awaited")
        return client

    # -- the port --------------------------------------------------------------------------------

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        client = self._require_client()
        try:
            await client.put_object(
                Bucket=self._bucket, Key=key, Body=data, ContentType=content_type
            )
        except DRIVER_ERRORS as exc:
            raise translate_error(exc, clock=self._clock) from None

    async def get(self, key: str) -> StoredObject:
        client = self._require_client()
        try:
            response = await client.get_object(Bucket=self._bucket, Key=key)
            async with response["Body"] as body:
                data = await body.read()
        except DRIVER_ERRORS as exc:
            raise translate_error(exc, key=key, clock=self._clock) from None
        return StoredObject(
            data=data,
            content_type=response.get("ContentType") or "application/octet-stream",
            etag=response.get("ETag", "").strip('"'),
        )

    async def delete(self, key: str) -> None:
        client = self._require_client()
        try:
            await client.delete_object(Bucket=self._bucket, Key=key)
        except DRIVER_ERRORS as exc:
            error = translate_error(exc, key=key, clock=self._clock)
            if isinstance(error, ObjectNotFound):
                return  # some servers answer 404 where S3 answers 204: gone either way
            raise error from None

    async def ping(self) -> None:
        client = self._require_client()
        try:
            await client.head_bucket(Bucket=self._bucket)
        except DRIVER_ERRORS as exc:
            raise translate_error(exc, clock=self._clock) from None

    async def ensure_bucket(self) -> None:
        client = self._require_client()
        try:
            await client.head_bucket(Bucket=self._bucket)
            return
        except ClientError as exc:
            if _status(exc) != 404:
                raise translate_error(exc, clock=self._clock) from None
        except DRIVER_ERRORS as exc:
            raise translate_error(exc, clock=self._clock) from None
        try:
            if self._region == "us-east-1":
                await client.create_bucket(Bucket=self._bucket)
            else:
                await client.create_bucket(
                    Bucket=self._bucket,
                    # Any name the server knows (MinIO's are free-form), not only AWS's list.
                    CreateBucketConfiguration={
                        "LocationConstraint": cast("BucketLocationConstraintType", self._region)
                    },
                )
        except ClientError as exc:
            if _code(exc) not in _BUCKET_EXISTS_CODES:
                raise translate_error(exc, clock=self._clock) from None
            # Created meanwhile (another replica starting), or owned by someone else: only a
            # successful HEAD says which.
            await self.ping()
            return
        except DRIVER_ERRORS as exc:
            raise translate_error(exc, clock=self._clock) from None
        logger.info(
            "object store: created bucket %r",
            self._bucket,
            extra={"event": "s3_bucket_created", "bucket": self._bucket},
        )


def _drop_expect_continue(request: AWSPreparedRequest, **kwargs: object) -> None:
    """Send uploads without ``Expect: 100-continue``.

    aiohttp starts the read timeout only once the body is written, and with ``Expect`` the body
    waits for the server's ``100 Continue``: a server that takes the headers and goes silent
    would hang an upload for ever. Our uploads are small (images of a few MiB), so the saved
    round trip matters more than the early refusal ``Expect`` could bring. The header is not
    signed, so removing it here is safe.
    """
    if "Expect" in request.headers:
        del request.headers["Expect"]


# -- exception translation -----------------------------------------------------------------------


def translate_error(
    exc: BaseException, *, key: str | None = None, clock: Clock = SYSTEM_CLOCK
) -> ObjectStoreError:
    """The :mod:`~backend.storage.object_store` error for a driver exception.

    ``key`` is the object the call was about (None for bucket-level calls): a 404 then means that
    object is missing rather than the bucket. Messages hold the driver's error class or the S3
    error code and HTTP status only. A ``Retry-After`` given as an HTTP date is counted from
    ``clock.wall()`` (the date is wall time by definition).
    """
    if isinstance(exc, ObjectStoreError):
        return exc
    if isinstance(exc, ClientError):
        return _translate_client_error(exc, key, clock)
    kind = type(exc).__name__
    if isinstance(exc, _UNAVAILABLE_DRIVER_ERRORS):
        reason = _os_reason(exc)
        detail = f"{kind} ({reason})" if reason else kind
        return ObjectStoreUnavailable(f"object store unavailable: {detail}")
    return ObjectStoreError(f"object store error: {kind}")


def _translate_client_error(exc: ClientError, key: str | None, clock: Clock) -> ObjectStoreError:
    code = _code(exc)
    status = _status(exc)
    if code == "NoSuchBucket" or (key is None and status == 404):
        return ObjectStoreError("object store error: the bucket does not exist")
    if key is not None and (code in _NOT_FOUND_CODES or status == 404):
        return ObjectNotFound(key)
    label = _label(code, status)
    if (
        code in _UNAVAILABLE_CODES
        or status == 429
        # 501 Not Implemented is an answer, not an outage: another try will not change it.
        or (status is not None and status >= 500 and status != 501)
    ):
        return ObjectStoreUnavailable(
            f"object store unavailable: {label}", retry_after=_retry_after(exc, clock)
        )
    return ObjectStoreError(f"object store error: {label}")


def _code(exc: ClientError) -> str:
    error: Mapping[str, Any] = exc.response.get("Error") or {}
    code = str(error.get("Code") or "")
    # The code is echoed into messages: keep it to the token S3 defines, whatever the server sent.
    return code if _SAFE_CODE.fullmatch(code) else ""


def _status(exc: ClientError) -> int | None:
    metadata: Mapping[str, Any] = exc.response.get("ResponseMetadata") or {}
    status = metadata.get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def _label(code: str, status: int | None) -> str:
    if status is None:
        return code or "unknown error"
    if not code or code == str(status):
        return f"HTTP {status}"
    return f"{code} (HTTP {status})"


def _retry_after(exc: ClientError, clock: Clock) -> float | None:
    """Seconds from the response's ``Retry-After`` header (delta-seconds or an HTTP date)."""
    metadata: Mapping[str, Any] = exc.response.get("ResponseMetadata") or {}
    headers: Mapping[str, str] = metadata.get("HTTPHeaders") or {}
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - clock.wall()
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def _os_reason(exc: BaseException) -> str | None:
    """The C library's text for the first errno found under ``exc`` ("Connection refused").

    Built from the errno alone: the ``strerror`` a socket error carries may include the peer's
    address ("Connect call failed ('10.0.0.5', 9000)").
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen or len(seen) > 8:
            continue
        seen.add(id(current))
        number = current.errno if isinstance(current, OSError) else None
        if isinstance(number, int) and number in errno_names.errorcode:
            return os.strerror(number)
        if isinstance(current, TimeoutError):
            return "timed out"
        kwargs = getattr(current, "kwargs", None)  # botocore keeps the driver error here
        inner = kwargs.get("error") if isinstance(kwargs, dict) else None
        os_error = getattr(current, "os_error", None)  # aiohttp.ClientConnectorError
        pending.extend(
            e if isinstance(e, BaseException) else None
            for e in (inner, os_error, current.__cause__, current.__context__)
        )
    return None
