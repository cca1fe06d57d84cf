"""The health API (ARCHITECTURE §6): probes read the background checker's results and never wait."""

from __future__ import annotations

import logging
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backend.api.common import claims_of, staff_claims
from backend.api.errors import ApiError
from backend.api.models.errors import Error
from backend.api.models.health import (
    BreakerReset,
    HealthDetailed,
    HealthJson,
    HealthSummary,
    Liveness,
    NotReady,
    Ready,
    ServiceHealth,
    UnconfiguredService,
)
from backend.api.operations import Operation, Reply, errors, operation
from backend.auth import Claims, Role, require_role
from backend.observability import instance_of, render
from backend.state import AppState, app_state
from shared.resilience import HEALTH_JSON_MEDIA_TYPE, UnknownServiceError

audit = logging.getLogger("backend.audit")

ACTOR_HEADER = "X-QuestCity-Actor"
"""The person behind an admin token's reset (the browser TUI's signed-in engineer): the token
names the tool (``questcity-cli``), this header the human, for the audit line. Honoured only
with an admin token, which could reset anyway; anyone else's is never looked at."""
ACTOR_MAX = 100

_STAFF = (
    "Needs an operator or admin token (unless the server runs with "
    "`QUESTCITY_HEALTH_DETAILS=public`)."
)
_SERVICE = {"name": "A dependency's name: `database` or `s3`."}


def _summary(description: str) -> Reply:
    return Reply(description, HealthSummary, alternatives={HEALTH_JSON_MEDIA_TYPE: HealthJson})


@operation(
    Operation(
        "getHealth",
        "Overall health",
        "health",
        {
            200: _summary("Healthy or degraded: the API can serve."),
            503: _summary("Unhealthy: a critical dependency is down."),
        },
        description="The seed's JSON; `application/health+json` (the IETF format) when the "
        "request's `Accept` asks for it.",
    )
)
async def overall(request: Request) -> Response:
    """Anyone's: the seed's counts. The IETF format's per-service checks (names, latencies) are
    details, shown only to whom ``/detailed`` would show them (ARCHITECTURE §6)."""
    state = app_state(request)
    report = state.checker.report()
    if HEALTH_JSON_MEDIA_TYPE in request.headers.get("accept", ""):
        document = report.health_json(version="1")
        if not _may_see_details(request, state):
            del document["checks"]
        return JSONResponse(
            document, status_code=report.http_status, media_type=HEALTH_JSON_MEDIA_TYPE
        )
    return JSONResponse(report.summary(), status_code=report.http_status)


def _may_see_details(request: Request, state: AppState) -> bool:
    """Like :func:`_details_allowed`, but a public route's answer: no 401 or 403, just less."""
    try:
        _details_allowed(request, state)
    except ApiError:
        return False
    return True


@operation(
    Operation(
        "getLiveness",
        "Liveness probe",
        "health",
        {200: Reply("The process serves requests.", Liveness)},
        description="Depends on no outside service.",
    )
)
async def live(request: Request) -> Response:
    return JSONResponse({"status": "alive"})


@operation(
    Operation(
        "getReadiness",
        "Readiness probe",
        "health",
        {
            200: Reply("Start-up is complete and not draining.", Ready),
            503: Reply("Starting up or shutting down.", NotReady),
        },
    )
)
async def ready(request: Request) -> Response:
    reason = app_state(request).lifecycle.not_ready_reason
    if reason is None:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "not_ready", "reason": reason}, status_code=503)


def _details_allowed(request: Request, state: AppState) -> None:
    if state.settings.health_details != "public":
        staff_claims(request, Role.OPERATOR, Role.ADMIN)


def _not_configured(state: AppState) -> dict[str, object]:
    if state.storage is not None:
        return {}
    return {
        "s3": {
            "name": "s3",
            "status": "not_configured",
            "critical": False,
            "reason": "QUESTCITY_S3_ENDPOINT_URL is not set; file features are off",
        }
    }


@operation(
    Operation(
        "getHealthDetailed",
        "Every service's health and figures",
        "health",
        {200: Reply("Every service in detail.", HealthDetailed), **errors(401, 403)},
        description=_STAFF,
        security="bearer",
    )
)
async def detailed(request: Request) -> Response:
    state = app_state(request)
    _details_allowed(request, state)
    document = state.checker.report(with_details=True).detailed()
    document["checks"] = {**document["checks"], **_not_configured(state)}  # type: ignore[dict-item]
    document["ready"] = state.lifecycle.ready
    document["instance"] = instance_of(request).as_dict()
    return JSONResponse(document)


@operation(
    Operation(
        "getServiceHealth",
        "One service's health and figures",
        "health",
        {
            200: Reply("The service in detail.", (ServiceHealth, UnconfiguredService)),
            **errors(401, 403, 404),
        },
        description=_STAFF,
        path=_SERVICE,
        security="bearer",
    )
)
async def service(request: Request) -> Response:
    state = app_state(request)
    _details_allowed(request, state)
    name = request.path_params["name"]
    try:
        return JSONResponse(state.checker.get_service_metrics(name).as_dict())
    except UnknownServiceError:
        extra = _not_configured(state).get(name)
        if extra is not None:
            return JSONResponse(extra)
        raise ApiError(404, "unknown_service", f"There is no service called {name!r}.") from None


@operation(
    Operation(
        "resetCircuitBreaker",
        "Close a service's circuit breaker",
        "health",
        {
            200: Reply("The breaker is closed.", BreakerReset),
            400: Reply(
                f"`{ACTOR_HEADER}` is not 1 to {ACTOR_MAX} printable characters (`invalid_actor`).",
                Error,
            ),
            **errors(401, 403, 404),
        },
        description="Needs an admin token. Closes the breaker of the process that answers "
        "(named in `instance`): each replica has its own. Written to the log as an audit line "
        "naming the token's subject and the instance, and so is a refusal (403); a missing or "
        f"invalid token (401) is not. A tool acting for a person (the on-call TUI) names them "
        f"in `{ACTOR_HEADER}`: the line then reads `reset by alice (via questcity-cli)`.",
        headers=("Actor",),
        path=_SERVICE,
        security="bearer",
    )
)
async def reset(request: Request) -> Response:
    state = app_state(request)
    # A 401 (no token, or one we did not sign) is not audited: it names nobody, and anyone can
    # send a flood of them. A 403 names a real account reaching for an admin's power.
    claims = claims_of(request)
    name = request.path_params["name"]
    try:
        require_role(claims, Role.ADMIN)
    except ApiError:
        _audit_refusal(claims, name, instance_of(request).id)
        raise
    person = _actor(request)
    breaker = state.registry.find_circuit_breaker(name)
    if breaker is None or name not in state.checker.services():
        raise ApiError(404, "unknown_service", f"There is no service called {name!r}.")
    previous = breaker.state
    # With a person named, the token's subject is the tool they used ("via").
    actor, via = (person, claims.sub) if person is not None else (claims.sub, None)
    who = f"{actor} (via {via})" if via is not None else actor
    breaker.reset(reason=f"reset by {who}")
    instance = instance_of(request).id
    # Breakers are per process: the line names which replica's breaker the actor closed.
    audit.warning(
        "circuit breaker %s reset by %s on %s (was %s)",
        name,
        who,
        instance,
        previous.value,
        extra={
            "event": "breaker_reset",
            "breaker": name,
            "actor": actor,
            "role": claims.role.value,
            "instance": instance,
            "previous_state": previous.value,
            **({"via": via} if via is not None else {}),
        },
    )
    return JSONResponse(
        {
            "service": name,
            "state": breaker.state.value,
            "previous_state": previous.value,
            # Which replica's breaker this was: a reset through a balancer closes one of several.
            "instance": instance_of(request).as_dict(),
        }
    )


def _actor(request: Request) -> str | None:
    """The person named in ``X-QuestCity-Actor`` (an admin's request only), trimmed; ``None``
    without the header. Anything but 1 to ``ACTOR_MAX`` printable characters is refused: it
    goes into an audit line, where a line break or a control character could forge or hide
    one."""
    raw = request.headers.get(ACTOR_HEADER)
    if raw is None:
        return None
    # Header values are bytes the server reads as Latin-1: a name outside ASCII comes UTF-8
    # percent-encoded (monitor.reset.actor_header_value) and is decoded here, so ``Zoë`` is
    # audited as ``Zoë``. Bytes that are not UTF-8 are refused, not replaced.
    try:
        # (at most 4 UTF-8 bytes of 3 characters each per character: bounded before decoding)
        value = unquote(raw.strip()[: ACTOR_MAX * 12 + 1], errors="strict").strip()
    except UnicodeDecodeError:
        value = ""
    if not 1 <= len(value) <= ACTOR_MAX or not value.isprintable():
        raise ApiError(
            400,
            "invalid_actor",
            f"{ACTOR_HEADER} must be 1 to {ACTOR_MAX} printable characters (the name of the "
            "person resetting).",
        )
    return value


def _audit_refusal(claims: Claims, name: str, instance: str) -> None:
    # The name is the caller's, not necessarily a service's: quoted (repr) in the message, so a
    # line break in it cannot begin a forged line in a plain-text log.
    audit.warning(
        "circuit breaker reset of %r refused to %s (role %s)",
        name,
        claims.sub,
        claims.role.value,
        extra={
            "event": "breaker_reset_refused",
            "breaker": name,
            "actor": claims.sub,
            "role": claims.role.value,
            "instance": instance,
        },
    )


@operation(
    Operation(
        "getMetrics",
        "Prometheus metrics",
        "health",
        {
            200: Reply(
                "The Prometheus text exposition format.",
                {"type": "string"},
                media=("text/plain",),
            ),
            **errors(401, 403),
        },
        description="Public by default; with `QUESTCITY_METRICS_PUBLIC=false` it needs an "
        "operator or admin token (401/403 otherwise).",
        security="optional",
    )
)
async def metrics(request: Request) -> Response:
    state = app_state(request)
    if not state.settings.metrics_public:
        staff_claims(request, Role.OPERATOR, Role.ADMIN)
    body, content_type = render(state.metrics.registry)
    return Response(body, media_type=content_type)


routes = [
    Route("/api/v1/health/", overall, methods=["GET"]),
    Route("/api/v1/health/live", live, methods=["GET"]),
    Route("/api/v1/health/ready", ready, methods=["GET"]),
    Route("/api/v1/health/detailed", detailed, methods=["GET"]),
    Route("/api/v1/health/services/{name}", service, methods=["GET"]),
    Route("/api/v1/health/services/{name}/reset", reset, methods=["POST"]),
    Route("/metrics", metrics, methods=["GET"]),
]
