"""Resetting one breaker on every replica of a target, with every outcome put in words.

``POST {replica}/api/v1/health/services/{name}/reset`` with an admin token answers 200
``{"service", "state", "previous_state"}`` (and, from a backend that names itself, maybe an
``instance``), or 401/403/404 with ``{"error", "message"}``. Breaker state is per process, so a
reset that reaches one replica of three closes one breaker in three: :func:`reset_everywhere`
sends it to every replica at once and returns one :class:`ReplicaOutcome` per replica, in key
order. An outcome is a value, never an exception; one replica that refuses, hangs or answers
garbage changes nothing for the others.

Every answer is hostile: it is read up to :data:`MAX_ANSWER_BYTES` and no further, within the
target's timeout on the caller's clock (httpx's timeouts are per read: a byte a second would
hold a reset for ever), and what is kept of it (state words, an instance id, an error message)
is checked or cut short and stripped of control characters before it reaches a terminal or the
TUI. No message carries the token.

Used by ``questcity breaker reset`` and the TUI; imports nothing of Textual.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from monitor.answer import BREAKER_STATE
from monitor.config import Target
from monitor.discovery import Replica
from shared.resilience import SYSTEM_CLOCK, Clock, within

RESET_PATH = "/api/v1/health/services/{name}/reset"
ACTOR_HEADER = "X-QuestCity-Actor"
"""Who asked for the reset (the engineer signed in to the TUI); the backend writes it on its
audit line, and honours it only from an admin token."""
MAX_ACTOR = 100
"""Characters of the engineer's name sent in :data:`ACTOR_HEADER`."""
MAX_ANSWER_BYTES = 64 * 1024
"""A reset answer is under 200 bytes; anything past 64 KiB is not one, and is not read."""
MAX_MESSAGE = 200
"""Characters shown of a backend's own error message."""
MAX_INSTANCE = 64
"""Characters shown of an instance id a backend reports."""
MAX_SERVICE_SHOWN = 64
"""Characters shown of the service name the caller asked for (it is echoed in a 404's words)."""
MAX_SHOWN_FAILURES = 3
"""Failed replicas named in :func:`reset_summary`; the rest are counted."""


@dataclass(frozen=True, slots=True)
class ReplicaOutcome:
    """How the reset went on one replica.

    ``message`` names the replica (its key, and its instance id when the answer carried one) and
    says what happened, as a sentence; ``reason`` is the same without the replica's name, for a
    line that starts with the key."""

    replica: str
    instance: str | None
    ok: bool
    message: str
    state: str | None = None
    previous_state: str | None = None
    reason: str = ""


def reset_url(base_url: str, service: str) -> str:
    return base_url.rstrip("/") + RESET_PATH.format(name=quote(service, safe=""))


async def reset_everywhere(
    client: httpx.AsyncClient,
    target: Target,
    service: str,
    token: str,
    replicas: Sequence[Replica],
    *,
    clock: Clock = SYSTEM_CLOCK,
    actor: str | None = None,
) -> list[ReplicaOutcome]:
    """Reset ``service``'s breaker on every one of ``replicas`` concurrently, each within
    ``target.timeout``; one outcome per replica, sorted by key. ``actor`` (who asked) goes to
    each replica as :data:`ACTOR_HEADER`."""
    ordered = sorted(replicas, key=lambda replica: replica.key)
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
    named = actor_header_value(actor or "")
    if named:
        headers[ACTOR_HEADER] = named
    return list(
        await asyncio.gather(
            *(_reset_one(client, target, service, token, headers, r, clock) for r in ordered)
        )
    )


def actor_header_value(actor: str) -> str:
    """The name as a header value: one line of printable ASCII as it is (``alice``,
    ``Alice Martin``), anything else UTF-8 percent-encoded (``Zoë`` -> ``Zo%C3%AB``), at most
    :data:`MAX_ACTOR` characters of the name; '' for no name."""
    name = " ".join("".join(c for c in actor[: MAX_ACTOR * 4] if c.isprintable()).split())
    name = name[:MAX_ACTOR]
    if name.isascii() and "%" not in name:
        return name
    return quote(name, safe=" !#$&'()*+,-./:;<=>?@[]^_`{|}~")


def reset_summary(outcomes: Sequence[ReplicaOutcome]) -> str:
    """One line: ``reset on 3/3 replicas``, or ``reset on 2/3: <what went wrong where>``."""
    total = len(outcomes)
    if total == 0:
        return "reset on no replica: the target has none"
    done = sum(outcome.ok for outcome in outcomes)
    if done == total:
        return f"reset on {total}/{total} replica{'s' if total > 1 else ''}"
    failed = [outcome for outcome in outcomes if not outcome.ok]
    named = "; ".join(outcome.message for outcome in failed[:MAX_SHOWN_FAILURES])
    more = len(failed) - MAX_SHOWN_FAILURES
    return f"reset on {done}/{total}: {named}" + (f"; +{more} more failed" if more > 0 else "")


# -- one replica ------------------------------------------------------------------------------


class _TooLarge(Exception):
    """The answer is past :data:`MAX_ANSWER_BYTES` (declared or read)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Compressed(Exception):
    """The answer is compressed although a plain one was asked for."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def _reset_one(
    client: httpx.AsyncClient,
    target: Target,
    service: str,
    token: str,
    headers: dict[str, str],
    replica: Replica,
    clock: Clock,
) -> ReplicaOutcome:
    def failed(reason: str) -> ReplicaOutcome:
        return _outcome(replica, None, False, reason)

    try:
        status, body = await within(
            _post(client, target, service, headers, replica), target.timeout, clock
        )
    except TimeoutError:
        return failed(f"did not answer within {target.timeout:g} s")
    except httpx.TimeoutException:
        return failed(f"did not answer within {target.timeout:g} s")
    except _TooLarge as large:
        return failed(f"answered {large.status} with more than {MAX_ANSWER_BYTES // 1024} KiB")
    except _Compressed as compressed:
        return failed(f"answered {compressed.status} compressed (a plain answer was asked for)")
    except httpx.HTTPError as error:
        return failed(f"could not be reached ({_network_error(error)})")
    except Exception as error:
        # One replica's oddity must not sink the others' outcomes (gather would raise it).
        # httpx.InvalidURL, StreamError and the like are not HTTPError; their text may hold the
        # URL, so only the class is named.
        return failed(f"could not be reset ({type(error).__name__})")
    return _judge(replica, target, service, token, status, body)


def _judge(
    replica: Replica, target: Target, service: str, token: str, status: int, body: bytes
) -> ReplicaOutcome:
    document = _json(body)
    instance = _instance(document, token)
    env = f"${target.admin_token_env}" if target.admin_token_env else "the admin token's variable"
    if status == 200:
        state, previous = document.get("state"), document.get("previous_state")
        if not (_state_word(state) and _state_word(previous)):
            return _outcome(
                replica, instance, False, "answered 200 without the expected JSON (state words)"
            )
        assert isinstance(state, str) and isinstance(previous, str)
        return _outcome(
            replica, instance, True, f"{previous} → {state}", state=state, previous_state=previous
        )
    if status == 401:
        reason = (
            "refused the token (401: missing, invalid or expired); mint a new one with "
            f"`questcity token --role admin` and set {env}"
        )
    elif status == 403:
        reason = (
            f"refused the token (403: it needs the admin role); set {env} to one minted with "
            "`questcity token --role admin`"
        )
    elif status == 404:
        reason = f"has no breaker called {_quoted(service)} (404)"
    elif 300 <= status < 400:
        reason = f"answered {status} (a redirect, not followed: is the replica's URL right?)"
    else:
        message = _clean(document.get("message"), MAX_MESSAGE, token)
        reason = f"answered {status}" + (f": {message}" if message else "")
    return _outcome(replica, instance, False, reason)


def _outcome(
    replica: Replica,
    instance: str | None,
    ok: bool,
    reason: str,
    *,
    state: str | None = None,
    previous_state: str | None = None,
) -> ReplicaOutcome:
    who = replica.key + (f" (instance {instance})" if instance else "")
    message = f"{who} reset: {reason}" if ok else f"{who} {reason}"
    return ReplicaOutcome(
        replica=replica.key,
        instance=instance,
        ok=ok,
        message=message,
        state=state,
        previous_state=previous_state,
        reason=reason,
    )


# -- the request, bounded ---------------------------------------------------------------------


async def _post(
    client: httpx.AsyncClient,
    target: Target,
    service: str,
    headers: dict[str, str],
    replica: Replica,
) -> tuple[int, bytes]:
    # httpx's timeout stays as a per-step backstop; the overall deadline is within()'s.
    request = client.build_request(
        "POST",
        reset_url(replica.url, service),
        headers=headers,
        timeout=httpx.Timeout(target.timeout),
    )
    # Redirects are not followed: a reset answers 200 or an error, never "go elsewhere".
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        status = response.status_code
        declared = response.headers.get("content-length", "")
        if declared.strip().isdigit() and int(declared) > MAX_ANSWER_BYTES:
            raise _TooLarge(status)
        body = bytearray()
        if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
            raise _Compressed(status)  # asked for identity: a small gzip bomb inflates past caps
        async for chunk in response.aiter_bytes():  # identity only (refused above otherwise)
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                raise _TooLarge(status)
        return status, bytes(body)
    finally:
        await response.aclose()


# -- what is kept of an answer ----------------------------------------------------------------


def _json(body: bytes) -> dict[str, object]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # not JSON or UTF-8, 4,300+ digits, nested too deep
        return {}
    return document if isinstance(document, dict) else {}


def _state_word(value: object) -> bool:
    return isinstance(value, str) and BREAKER_STATE.fullmatch(value) is not None


def _instance(document: dict[str, object], token: str) -> str | None:
    """The answering instance's id, if the answer names one (``"instance": {"id": …}`` as in
    ``/detailed``, or a plain string); cleaned and cut short."""
    found = document.get("instance")
    if isinstance(found, dict):
        found = found.get("id")
    return _clean(found, MAX_INSTANCE, token) or None


def _clean(value: object, limit: int, token: str = "") -> str:
    """``value`` if it is a string, as one line of printable characters (no escape sequence
    reaches a terminal) of at most ``limit`` characters, ``token`` blanked out should the
    backend echo it; else ''."""
    if not isinstance(value, str):
        return ""
    if token:
        value = value.replace(token, "[token]")
    text = " ".join("".join(c if c.isprintable() else " " for c in value[: limit * 4]).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quoted(service: str) -> str:
    return repr(_clean(service, MAX_SERVICE_SHOWN))


def _network_error(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.ConnectError):
        return "connection refused" if _refused(error) else "connection failed"
    if isinstance(error, httpx.RemoteProtocolError):
        return "protocol error"
    if isinstance(error, httpx.NetworkError):
        return "network error"
    return type(error).__name__


def _refused(error: BaseException) -> bool:
    """Whether a connect error was a refusal: httpx's own text is often just "All connection
    attempts failed", the ConnectionRefusedError it wraps says it."""
    seen: BaseException | None = error
    for _ in range(8):  # a cause chain is short; never loop on a cycle
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False
