"""An ``http`` check: one request to a URL (the front door, a page, any HTTP API), judged by its
conditions on the status, the body, the response time and, over HTTPS, the certificate's expiry.

The answer is outside input. It is read up to :data:`MAX_BODY_BYTES`, before and after
decompression (a small gzip bomb inflates past any cap in one chunk, so it is inflated here in
bounded steps, not by httpx), and decoded as UTF-8 with replacement for ``[BODY]``. Failures are
said as plain classes (:func:`monitor.checks.run.failure_of`), never as an httpx exception's
text: that carries the URL, with its user info and query.
"""

from __future__ import annotations

import ssl
import zlib

import httpx

from monitor.checks.conditions import Observation
from monitor.checks.context import RunContext
from monitor.checks.run import failure_of, judged, unreached, unrunnable
from monitor.checks.spec import Check, HttpSettings, Outcome
from monitor.store.models import Status
from shared.resilience import Clock

MAX_BODY_BYTES = 1024 * 1024
"""The most of an answer read, compressed and decompressed (``[BODY]`` needs no more)."""
ACCEPT_ENCODING = "gzip, deflate"
"""What this module inflates itself, in bounded steps (unless the check's headers say else)."""
TOO_LARGE = "answer too large"
BAD_ANSWER = "bad answer"
BAD_URL = "the URL cannot be requested"
UNSUPPORTED_ENCODING = "bad answer: unsupported content-encoding"


class _Cut(Exception):
    """The answer broke a bound or could not be read as sent; ``reason`` is the plain error."""

    def __init__(self, reason: str, http_status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status


class _Answer:
    __slots__ = ("body", "certificate_seconds", "status")

    def __init__(self, status: int, body: bytes, certificate_seconds: float | None) -> None:
        self.status = status
        self.body = body
        self.certificate_seconds = certificate_seconds


async def run(check: Check, context: RunContext) -> Outcome:
    settings = check.settings
    assert isinstance(settings, HttpSettings)
    try:
        headers = httpx.Headers(dict(settings.headers))
    except UnicodeEncodeError:
        return unrunnable("the check's headers are not ASCII")
    headers.setdefault("Accept-Encoding", ACCEPT_ENCODING)
    if settings.token_env:
        token = context.env(settings.token_env)
        if token is None:
            return unrunnable(f"token_env {settings.token_env} is not set")
        if not token.isascii() or not token.isprintable():
            return unrunnable(f"token_env {settings.token_env} is not a printable ASCII token")
        headers["Authorization"] = f"Bearer {token}"
    try:
        client = context.http.client(
            ca_file=settings.ca_file, follow_redirects=settings.follow_redirects
        )
    except (OSError, ssl.SSLError):
        return unrunnable("ca_file cannot be read as PEM certificates")
    clock = context.clock
    started = clock.monotonic()

    def elapsed_ms() -> float:
        return (clock.monotonic() - started) * 1000.0

    try:
        answer = await _fetch(client, check, settings, headers, clock)
    except _Cut as cut:
        return Outcome(
            Status.UNHEALTHY, elapsed_ms(), http_status=cut.http_status, error=cut.reason
        )
    except httpx.HTTPError as error:
        status, text = _failure(error, check.timeout)
        return unreached(check, text, latency_ms=elapsed_ms(), status=status)
    except httpx.InvalidURL:
        return unrunnable(BAD_URL)
    latency_ms = elapsed_ms()
    seen = Observation(
        status=answer.status,
        response_ms=latency_ms,
        body=answer.body.decode("utf-8", errors="replace"),
        connected=True,
        certificate_seconds=answer.certificate_seconds,
    )
    return judged(check, seen, latency_ms=latency_ms, http_status=answer.status)


async def _fetch(
    client: httpx.AsyncClient,
    check: Check,
    settings: HttpSettings,
    headers: httpx.Headers,
    clock: Clock,
) -> _Answer:
    content = None if settings.body is None else settings.body.encode()
    # httpx's timeout stays as a per-step backstop; the overall deadline is the runner's.
    async with client.stream(
        settings.method,
        settings.url,
        headers=headers,
        content=content,
        timeout=httpx.Timeout(check.timeout),
    ) as response:
        code = response.status_code
        expiry = _certificate_seconds(response, clock)
        inflate = _Inflater.for_encoding(response.headers.get("content-encoding", ""), code)
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise _Cut(TOO_LARGE, code)
        received = 0
        body = bytearray()
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > MAX_BODY_BYTES:
                raise _Cut(TOO_LARGE, code)
            body += inflate.feed(chunk, MAX_BODY_BYTES + 1 - len(body))
            if len(body) > MAX_BODY_BYTES:
                raise _Cut(TOO_LARGE, code)
        body += inflate.end()
        if len(body) > MAX_BODY_BYTES:
            raise _Cut(TOO_LARGE, code)
        return _Answer(code, bytes(body), expiry)


class _Inflater:
    """An answer's ``Content-Encoding`` undone in steps that never make more than asked for."""

    def __init__(self, wbits: int | None, http_status: int) -> None:
        self._wbits = wbits
        self._status = http_status
        self._inflate = None if wbits is None else zlib.decompressobj(wbits)
        self._started = False

    @classmethod
    def for_encoding(cls, encoding: str, http_status: int) -> _Inflater:
        name = encoding.strip().lower()
        if name in ("", "identity"):
            return cls(None, http_status)
        if name in ("gzip", "x-gzip"):
            return cls(zlib.MAX_WBITS | 16, http_status)
        if name == "deflate":
            return cls(zlib.MAX_WBITS, http_status)
        raise _Cut(UNSUPPORTED_ENCODING, http_status)

    def feed(self, data: bytes, room: int) -> bytes:
        """At most ``room`` bytes of what ``data`` inflates to: reaching ``room`` means the
        answer is too large (the caller asks for one byte more than it keeps)."""
        if self._inflate is None:
            return data
        try:
            out = self._inflate.decompress(data, max(room, 1))
        except zlib.error:
            if self._wbits != zlib.MAX_WBITS or self._started:
                raise _Cut(BAD_ANSWER, self._status) from None
            # "deflate" is often sent raw, without the zlib header (as httpx also allows).
            self._wbits = -zlib.MAX_WBITS
            self._inflate = zlib.decompressobj(self._wbits)
            return self.feed(data, room)
        self._started = True
        return out

    def end(self) -> bytes:
        if self._inflate is None:
            return b""
        try:
            return self._inflate.flush()
        except zlib.error:
            raise _Cut(BAD_ANSWER, self._status) from None


def _certificate_seconds(response: httpx.Response, clock: Clock) -> float | None:
    """Seconds until the certificate the answer came over expires (None over plain HTTP, or
    when the connection does not tell): read from the open TLS connection, no extra request."""
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    ssl_object = stream.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    certificate = ssl_object.getpeercert()
    not_after = certificate.get("notAfter") if certificate else None
    if not isinstance(not_after, str):
        return None
    try:
        return ssl.cert_time_to_seconds(not_after) - clock.wall()
    except ValueError:
        return None


def _failure(error: httpx.HTTPError, timeout: float) -> tuple[Status, str]:
    if isinstance(error, httpx.TimeoutException):
        return Status.UNREACHABLE, f"timed out after {timeout:g} s"
    if isinstance(error, httpx.TooManyRedirects):
        return Status.UNHEALTHY, "too many redirects"
    if isinstance(error, httpx.RemoteProtocolError | httpx.DecodingError):
        return Status.UNHEALTHY, BAD_ANSWER
    if isinstance(error, httpx.UnsupportedProtocol):
        return Status.UNKNOWN, BAD_URL
    if isinstance(error, httpx.LocalProtocolError):
        return Status.UNKNOWN, "the request cannot be sent (its method or headers)"
    if isinstance(error, httpx.ProxyError):
        return Status.UNREACHABLE, "the proxy failed"
    return failure_of(error, timeout)
