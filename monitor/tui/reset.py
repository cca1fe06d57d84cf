"""Resetting a breaker through the backend's health API, with every failure put in words.

``POST {url}/api/v1/health/services/{name}/reset`` with an admin token answers 200
``{"service", "state", "previous_state"}``, or 401/403/404 with ``{"error", "message"}``. The
outcome is a value, never an exception: the TUI shows its message as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import httpx

from monitor.config import Target

RESET_PATH = "/api/v1/health/services/{name}/reset"


@dataclass(frozen=True, slots=True)
class ResetOutcome:
    ok: bool
    message: str
    state: str | None = None
    previous_state: str | None = None


def reset_url(target: Target, service: str) -> str:
    return target.url + RESET_PATH.format(name=quote(service, safe=""))


def unavailable_reason(target: Target) -> str:
    """Why this TUI cannot reset breakers of ``target``, and how to make it able to."""
    if target.admin_token_env is None:
        return (
            f"Breaker reset is unavailable for {target.title}: no admin token is configured. "
            f'Add admin_token_env = "QUESTCITY_ADMIN_TOKEN" to its [[targets]] table in the '
            "config, export that variable with an admin token (questcity token --role admin) "
            "and restart the TUI."
        )
    return (
        f"Breaker reset is unavailable for {target.title}: ${target.admin_token_env} is not set "
        "in this TUI's environment. Export it with an admin token "
        "(questcity token --role admin) and restart the TUI."
    )


async def reset_breaker(
    client: httpx.AsyncClient, target: Target, service: str, token: str
) -> ResetOutcome:
    where = f"{service} on {target.title}"
    try:
        response = await client.post(
            reset_url(target, service),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(target.timeout),
        )
    except httpx.TimeoutException:
        return ResetOutcome(
            False,
            f"Could not reset {where}: the backend at {target.url} did not answer within "
            f"{target.timeout:g} s.",
        )
    except httpx.HTTPError as error:
        return ResetOutcome(
            False,
            f"Could not reset {where}: the backend at {target.url} could not be reached "
            f"({_network_error(error)}).",
        )
    return _outcome(response, target, service, where)


def _outcome(response: httpx.Response, target: Target, service: str, where: str) -> ResetOutcome:
    status = response.status_code
    env = f"${target.admin_token_env}" if target.admin_token_env else "the admin token"
    if status == 200:
        body = _json(response)
        state, previous = body.get("state"), body.get("previous_state")
        if not isinstance(state, str) or not isinstance(previous, str):
            return ResetOutcome(
                False, f"Reset of {where}: the backend answered 200 without the expected JSON."
            )
        return ResetOutcome(
            True,
            f"Breaker of {where} reset: {previous} → {state}.",
            state=state,
            previous_state=previous,
        )
    if status == 401:
        return ResetOutcome(
            False,
            f"The backend refused the admin token for {target.title} (401: missing, invalid or "
            f"expired). Mint a new one with questcity token --role admin and set {env}.",
        )
    if status == 403:
        return ResetOutcome(
            False,
            f"The token in {env} is not allowed to reset breakers on {target.title} (403: it "
            "needs the admin role). Mint one with questcity token --role admin.",
        )
    if status == 404:
        return ResetOutcome(False, f"{target.title} has no breaker called {service!r} (404).")
    message = _json(response).get("message")
    detail = f": {message}" if isinstance(message, str) and message else ""
    return ResetOutcome(False, f"Could not reset {where}: the backend answered {status}{detail}.")


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _network_error(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.ConnectError):
        return "connection refused" if "refused" in str(error).lower() else "connection failed"
    if isinstance(error, httpx.RemoteProtocolError):
        return "protocol error"
    if isinstance(error, httpx.NetworkError):
        return "network error"
    return type(error).__name__
