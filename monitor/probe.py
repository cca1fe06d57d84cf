"""One check of one target's replica: read its health API over HTTP and turn the answer into a
record (:func:`probe`, at the target's ``url`` unless a ``base_url`` is given), and with it the
instance that answered (:func:`probe_replica`).

A failed probe (refused, timed out, garbage, a 5xx without the health JSON) is data: it becomes a
record with status ``unreachable`` and a sanitised error class, never an exception, so the daemon
never crashes on it. With an operator token the probe reads ``/api/v1/health/detailed`` (per-service
figures); without one, or when the token is refused, the public ``/api/v1/health/``. A token the
backend refuses (401, 403) is said in the replica's check (``ReplicaCheck.token_refused``): the
check itself still stands on the summary, but the monitor must not go quiet about the details it
lost (:mod:`monitor.self_alerts`). A 404 is an older backend without ``/detailed``: no refusal.

A target is outside input. The target's ``timeout`` is an overall deadline on the whole probe
(connect, headers, body, and the fallback to the summary), kept on the probe's clock: httpx's own
timeouts are per read, so a target sending a byte a second would otherwise hold a check for ever.
An answer is read up to :data:`MAX_ANSWER_BYTES` and no further, and every field kept from it is
bounded (:mod:`monitor.answer`).
"""

from __future__ import annotations

import httpx

from monitor import answer
from monitor.config import Target, replica_key
from monitor.store.models import CheckRecord, Instance, ReplicaCheck, Status
from shared.resilience import SYSTEM_CLOCK, Clock, within

SUMMARY_PATH = "/api/v1/health/"
DETAILED_PATH = "/api/v1/health/detailed"
MAX_ANSWER_BYTES = 1024 * 1024
"""A health answer is a few KiB; 1 MiB leaves room for 64 services with their details."""

TOKEN_REFUSED = (401, 403)
"""``/detailed`` answers that refuse the token (expired, revoked, signed by another key, a
player's role); the probe falls back to the summary and says so."""
NO_DETAILS = 404
"""An older backend without ``/detailed``: the summary, and nothing to say about the token."""

TIMEOUT = "timeout"
TOO_LARGE = "answer too large"
ENCODED = "answer compressed"


class _Seen:
    """What a probe learnt on the way, kept however it ends (a timeout after the refused
    ``/detailed`` still knows the token was refused)."""

    __slots__ = ("token_refused",)

    def __init__(self) -> None:
        self.token_refused: int | None = None


class _Refused(Exception):
    """The answer was cut off by a bound; ``reason`` is the check's plain error."""

    def __init__(self, reason: str, http_status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status


async def probe(
    client: httpx.AsyncClient,
    target: Target,
    *,
    token: str | None,
    clock: Clock = SYSTEM_CLOCK,
    base_url: str | None = None,
) -> CheckRecord:
    """One check of the target's replica at ``base_url`` (by default the target's ``url``)."""
    record, _instance, _seen = await _probe(client, target, token, clock, base_url or target.url)
    return record


async def probe_replica(
    client: httpx.AsyncClient,
    target: Target,
    base_url: str,
    *,
    token: str | None,
    clock: Clock = SYSTEM_CLOCK,
    key: str | None = None,
    budget: float | None = None,
) -> ReplicaCheck:
    """One check of one replica of ``target``, with the instance that answered (if it said);
    ``budget`` (default the target's timeout): seconds left of the check's deadline; the
    check's ``token_refused`` is the HTTP status with which ``/detailed`` refused ``token``."""
    record, instance, seen = await _probe(client, target, token, clock, base_url, budget)
    return ReplicaCheck(key or replica_key(base_url), record, instance, seen.token_refused)


async def _probe(
    client: httpx.AsyncClient,
    target: Target,
    token: str | None,
    clock: Clock,
    base_url: str,
    budget: float | None = None,
) -> tuple[CheckRecord, Instance | None, _Seen]:
    at = clock.wall()
    started = clock.monotonic()
    seen = _Seen()

    def failed(http_status: int | None, error: str) -> tuple[CheckRecord, None, _Seen]:
        return _failed(target, at, clock.monotonic() - started, http_status, error), None, seen

    try:
        fetched = await within(
            _fetch(client, target, base_url, token, seen),
            target.timeout if budget is None else budget,
            clock,
        )
    except TimeoutError:
        return failed(None, TIMEOUT)
    except httpx.TimeoutException:
        return failed(None, TIMEOUT)
    except httpx.ConnectError as error:
        refused = "refused" in str(error).lower()
        return failed(None, "connection refused" if refused else "connection failed")
    except httpx.HTTPError as error:
        return failed(None, _http_error_class(error))
    except _Refused as refused:
        return failed(refused.http_status, refused.reason)
    latency_ms = (clock.monotonic() - started) * 1000.0
    http_status, body = fetched
    try:
        document = answer.parse(body)
        status = Status.parse(document.get("status"))
        if status is Status.UNKNOWN and http_status >= 500:
            return failed(http_status, f"HTTP {http_status}")
        services = answer.services(document)
    except answer.AnswerRejected as rejected:
        return failed(http_status, rejected.reason)
    record = CheckRecord(
        target=target.name,
        at=at,
        status=status,
        latency_ms=latency_ms,
        http_status=http_status,
        error=None,
        services=services,
    )
    return record, answer.instance(document), seen


async def _fetch(
    client: httpx.AsyncClient, target: Target, base_url: str, token: str | None, seen: _Seen
) -> tuple[int, bytes]:
    # httpx's timeout stays as a per-step backstop; the overall deadline is the caller's.
    timeout = httpx.Timeout(target.timeout)
    if token:
        code, body = await _get(
            client,
            base_url + DETAILED_PATH,
            timeout,
            {"Authorization": f"Bearer {token}"},
            fallback_on=(*TOKEN_REFUSED, NO_DETAILS),
        )
        if body is not None:
            return code, body
        if code in TOKEN_REFUSED:
            seen.token_refused = code
    code, body = await _get(client, base_url + SUMMARY_PATH, timeout, {}, fallback_on=())
    assert body is not None
    return code, body


async def _get(
    client: httpx.AsyncClient,
    url: str,
    limits: httpx.Timeout,
    headers: dict[str, str],
    *,
    fallback_on: tuple[int, ...],
) -> tuple[int, bytes | None]:
    """Status and body of ``url``, read up to :data:`MAX_ANSWER_BYTES`; the body None if the
    status is one of ``fallback_on`` (it then is not read)."""
    # Compressed answers are not accepted: a small gzip bomb inflates past any cap in one chunk.
    headers = {**headers, "Accept-Encoding": "identity"}
    async with client.stream("GET", url, timeout=limits, headers=headers) as response:
        code = response.status_code
        if code in fallback_on:
            return code, None
        if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
            raise _Refused(ENCODED, code)
        declared = response.headers.get("content-length", "")
        if declared.strip().isdigit() and int(declared) > MAX_ANSWER_BYTES:
            raise _Refused(TOO_LARGE, code)
        body = bytearray()
        async for chunk in response.aiter_bytes():  # identity only (refused above otherwise)
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                raise _Refused(TOO_LARGE, code)
        return code, bytes(body)


def _failed(
    target: Target, at: float, elapsed: float, http_status: int | None, error: str
) -> CheckRecord:
    return CheckRecord(
        target=target.name,
        at=at,
        status=Status.UNREACHABLE,
        latency_ms=elapsed * 1000.0,
        http_status=http_status,
        error=error,
    )


def _http_error_class(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.RemoteProtocolError):
        return "protocol error"
    if isinstance(error, httpx.NetworkError):
        return "network error"
    return "request failed"
