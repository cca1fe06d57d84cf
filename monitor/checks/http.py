"""An ``http`` check: one request to a URL (the front door, a page, any HTTP API), judged by its
conditions on the status, the body, the response time and, over HTTPS, the certificate's expiry.

The answer is outside input. At most its first :data:`MAX_BODY_BYTES` are read, before and after
decompression (a small gzip bomb inflates past any cap in one chunk, so it is inflated here in
bounded steps, not by httpx), and judged on what was read: ``[BODY]`` is the body's first MiB
(decoded as UTF-8 with replacement), and a JSON path into a body cut there has no value.
Failures are said as plain classes (:func:`monitor.checks.run.failure_of`), never as an httpx
exception's text: that carries the URL, with its user info and query.

The URL's host is looked up by the context's resolver (:mod:`monitor.checks.resolve`), never by
httpx on the loop's default executor: each request goes to the address, with ``Host`` and TLS's SNI
and certificate check kept on the name — unless a proxy is configured in the environment: then
requests go as written, the proxy's to resolve, and ``NO_PROXY`` is matched on the name. Redirects
are followed here, not by httpx (at most :data:`MAX_REDIRECTS`): a hop to another origin (scheme,
host, port) drops the check's own headers, its token and its body, so they never reach a host the
check does not name; a 301, 302 or 303 turns into a GET without a body, as browsers do, and a 307 or
308 keeps the method and the body within the same origin only. ``follow_redirects = false`` judges
the 3xx itself.
"""

from __future__ import annotations

import ssl
import urllib.request
import zlib
from collections.abc import AsyncIterator

import httpx

from monitor.checks.conditions import Observation
from monitor.checks.context import RunContext
from monitor.checks.resolve import CONNECT_ATTEMPTS, Resolver, Unresolved, elapsed_ms
from monitor.checks.run import failure_of, judged, unreached, unrunnable
from monitor.checks.spec import Check, HttpSettings, Outcome
from monitor.store.models import Status
from shared.resilience import Clock

MAX_BODY_BYTES = 1024 * 1024
"""The most of an answer read, compressed and decompressed (``[BODY]`` is its first MiB)."""
MAX_REDIRECTS = 10
REDIRECTS = frozenset({301, 302, 303, 307, 308})
ACCEPT_ENCODING = "gzip, deflate"
"""What this module inflates itself, in bounded steps (unless the check's headers say else)."""
USER_AGENT = "questcity-monitor"
BODY_HEADERS = ("Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding")
"""The check's own headers that describe its body: dropped with it."""
BAD_ANSWER = "bad answer"
BAD_URL = "the URL cannot be requested"
BAD_REDIRECT = "bad answer: a redirect to a URL that cannot be requested"
TOO_MANY_REDIRECTS = "too many redirects"
UNSUPPORTED_ENCODING = "bad answer: unsupported content-encoding"


class _Cut(Exception):
    """The answer could not be read as sent; ``reason`` is the plain error."""

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
        own = httpx.Headers(dict(settings.headers))
    except UnicodeEncodeError:
        return unrunnable("the check's headers are not ASCII")
    if settings.token_env:
        token = context.env(settings.token_env)
        if token is None:
            return unrunnable(f"token_env {settings.token_env} is not set")
        if not token.isascii() or not token.isprintable():
            return unrunnable(f"token_env {settings.token_env} is not a printable ASCII token")
        own["Authorization"] = f"Bearer {token}"
    try:
        url = httpx.URL(settings.url)
    except (httpx.InvalidURL, ValueError):
        return unrunnable(BAD_URL)
    try:
        # Redirects are followed here (the module's docstring says why), never by the client.
        client = context.http.client(ca_file=settings.ca_file)
    except (OSError, ssl.SSLError):
        return unrunnable("ca_file cannot be read as PEM certificates")
    clock = context.clock
    started = clock.monotonic()
    # A transport given to the runner (a test's network) gets the URL as written: only httpx's
    # own network transport would look the name up on the default executor.
    resolver = context.resolver if _on_the_network(client) and not _proxied() else None
    try:
        answer = await _fetch(client, resolver, check, settings, url, own, clock)
    except _Cut as cut:
        latency_ms = elapsed_ms(clock, started)
        return Outcome(Status.UNHEALTHY, latency_ms, http_status=cut.http_status, error=cut.reason)
    except Unresolved as error:
        return unreached(check, error.reason, latency_ms=elapsed_ms(clock, started))
    except httpx.HTTPError as error:
        status, text = _failure(error, check.timeout)
        return unreached(check, text, latency_ms=elapsed_ms(clock, started), status=status)
    except httpx.InvalidURL:
        return unrunnable(BAD_URL)
    latency_ms = elapsed_ms(clock, started)
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
    resolver: Resolver | None,
    check: Check,
    settings: HttpSettings,
    url: httpx.URL,
    own: httpx.Headers,
    clock: Clock,
) -> _Answer:
    """The answer, after the redirects the check follows."""
    method = settings.method
    content = None if settings.body is None else settings.body.encode()
    for hop in range(MAX_REDIRECTS + 1):
        headers = httpx.Headers(
            {"Accept": "*/*", "Accept-Encoding": ACCEPT_ENCODING, "User-Agent": USER_AGENT}
        )
        headers.update(own)
        response = await _send(client, resolver, method, url, headers, content, check.timeout)
        try:
            code = response.status_code
            location = response.headers.get("location")
            if not (settings.follow_redirects and code in REDIRECTS and location is not None):
                return await _read(response, clock)
        finally:
            await response.aclose()  # a redirect's body is never read
        if hop == MAX_REDIRECTS:
            raise _Cut(TOO_MANY_REDIRECTS, code)
        target = _redirected(url, location, code)
        same_origin = _origin(target) == _origin(url)
        if code in (301, 302, 303) or not same_origin:
            method = "HEAD" if method == "HEAD" else "GET"
            if content is not None:
                content = None
                for name in BODY_HEADERS:
                    own.pop(name, None)
        if not same_origin:
            own = httpx.Headers()  # the check's headers and token are for the host it names
        url = target
    raise AssertionError("unreachable")  # pragma: no cover


async def _send(
    client: httpx.AsyncClient,
    resolver: Resolver | None,
    method: str,
    url: httpx.URL,
    headers: httpx.Headers,
    content: bytes | None,
    seconds: float,
) -> httpx.Response:
    """One request, its answer streamed. With a resolver, to the host's addresses in turn (a
    connection that fails before anything is sent is tried on the next one)."""
    # httpx's timeout stays as a per-step backstop; the overall deadline is the runner's.
    extensions: dict[str, object] = {"timeout": httpx.Timeout(seconds).as_dict()}
    if resolver is None:
        request = httpx.Request(method, url, headers=headers, content=content)
        request.extensions = extensions
        return await client.send(request, stream=True, follow_redirects=False)
    host = url.raw_host.decode("ascii")
    addresses = await resolver.addresses(host, url.port or (443 if url.scheme == "https" else 80))
    if "Host" not in headers:
        bracketed = f"[{host}]" if ":" in host else host
        headers["Host"] = bracketed if url.port is None else f"{bracketed}:{url.port}"
    if url.scheme == "https":
        extensions["sni_hostname"] = host  # the certificate is checked against the name
    failures: list[httpx.ConnectError] = []
    for address in addresses[:CONNECT_ATTEMPTS]:
        request = httpx.Request(
            method, url.copy_with(host=address), headers=headers, content=content
        )
        request.extensions = extensions
        try:
            return await client.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError as error:
            if failure_of(error, seconds)[0] is not Status.UNREACHABLE:
                raise  # a certificate or handshake refused: another address says the same
            failures.append(error)
    refused = [f for f in failures if failure_of(f, seconds)[1] == "connection refused"]
    raise (refused or failures)[0]


def _redirected(url: httpx.URL, location: str, code: int) -> httpx.URL:
    try:
        target = url.join(location)
    except (httpx.InvalidURL, ValueError):
        raise _Cut(BAD_REDIRECT, code) from None
    if target.scheme not in ("http", "https") or not target.raw_host:
        raise _Cut(BAD_REDIRECT, code)
    return target.copy_with(fragment=None)


def _origin(url: httpx.URL) -> tuple[str, bytes, int]:
    return url.scheme, url.raw_host.lower(), url.port or (443 if url.scheme == "https" else 80)


def _on_the_network(client: httpx.AsyncClient) -> bool:
    return isinstance(getattr(client, "_transport", None), httpx.AsyncHTTPTransport)


def _proxied() -> bool:
    """A proxy is configured in the environment (``HTTP_PROXY``, ``HTTPS_PROXY``,
    ``ALL_PROXY``): requests then go as written, to httpx and the proxy — pinned to an address,
    ``NO_PROXY`` would be matched against the address instead of the name, and names the proxy
    resolves would have to resolve here."""
    return any(scheme != "no" for scheme in urllib.request.getproxies_environment())


async def _read(response: httpx.Response, clock: Clock) -> _Answer:
    """The answer's status, certificate expiry and at most the first :data:`MAX_BODY_BYTES` of
    its body, inflated in bounded steps (the rest is never read)."""
    code = response.status_code
    expiry = _certificate_seconds(response, clock)
    inflate = _Inflater.for_encoding(response.headers.get("content-encoding", ""), code)
    received = 0
    body = bytearray()
    async for whole in _raw(response):
        chunk = whole[: MAX_BODY_BYTES - received]
        received += len(chunk)
        body += inflate.feed(chunk, MAX_BODY_BYTES - len(body))
        if len(body) >= MAX_BODY_BYTES or received >= MAX_BODY_BYTES:
            break
    else:
        body += inflate.end(MAX_BODY_BYTES - len(body))
    return _Answer(code, bytes(body[:MAX_BODY_BYTES]), expiry)


async def _raw(response: httpx.Response) -> AsyncIterator[bytes]:
    if response.is_stream_consumed:  # read whole already: an answer a test's transport made
        yield response.content[:MAX_BODY_BYTES]
        return
    async for chunk in response.aiter_raw():
        yield chunk


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
        """At most ``room`` bytes of what ``data`` inflates to (what is past it is never
        inflated: the caller stops reading once it has ``room``)."""
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

    def end(self, room: int) -> bytes:
        if self._inflate is None:
            return b""
        try:
            return self._inflate.flush(max(room, 1))
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
    if isinstance(error, httpx.RemoteProtocolError | httpx.DecodingError):
        return Status.UNHEALTHY, BAD_ANSWER
    if isinstance(error, httpx.UnsupportedProtocol):
        return Status.UNKNOWN, BAD_URL
    if isinstance(error, httpx.LocalProtocolError):
        return Status.UNKNOWN, "the request cannot be sent (its method or headers)"
    if isinstance(error, httpx.ProxyError):
        return Status.UNREACHABLE, "the proxy failed"
    return failure_of(error, timeout)
