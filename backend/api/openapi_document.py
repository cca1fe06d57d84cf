"""The OpenAPI 3.1 document of every route in :func:`backend.app.routes` (DESIGN §6–§8).

Written by hand, next to the handlers it describes, and kept honest by tests: every (path, method)
of the router is here and nothing else is (``tests/backend/test_openapi.py``), the document is valid
OpenAPI 3.1, and schemathesis checks the running app against it. Limits come from the modules that
enforce them (``backend.domain``, ``backend.api.common``, ``backend.storage``), so a changed limit
changes the document too.

Behaviour that depends on settings is described for the defaults: ``/api/v1/health/detailed`` and
``/api/v1/health/services/{name}`` need an operator or admin token (``QUESTCITY_HEALTH_DETAILS``
may make them public), and ``/metrics`` is public (``QUESTCITY_METRICS_PUBLIC=false`` makes it
need one).
"""

from __future__ import annotations

import copy
import functools
import json
import sys

from backend.api.common import JSON_BODY_LIMIT
from backend.api.strict_json import MAX_DEPTH, MAX_NUMBER_CHARS
from backend.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from backend.degradation import DEGRADED_HEADER
from backend.domain import (
    CITY_MAX,
    DESCRIPTION_MAX,
    PAGE_MAX,
    POINTS_MAX,
    TITLE_MAX,
    USERNAME_MAX,
)
from backend.settings import Settings
from backend.storage import ImageKind
from shared.resilience import HEALTH_JSON_MEDIA_TYPE

Schema = dict[str, object]

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
DEFAULT_PAGE_SIZE = 20
IDEMPOTENCY_KEY_MAX = 255
IMAGE_MEDIA_TYPES = tuple(kind.content_type for kind in ImageKind)
METRICS_MEDIA_TYPE = "text/plain"
JSON = "application/json"

# Starlette's ``{name}`` path segments match one or more characters other than "/".
_PATH_SEGMENT = r"^[^/]+$"
# What backend.domain.storable accepts: no NUL, no unpaired surrogate (any database can store it).
_STORABLE: Schema = {"pattern": "^[^\\u0000]*$"}


def _char_class(codes: list[int], *, negate: bool = False) -> str:
    """A regex character class of ``codes`` in ``\\uXXXX`` escapes (ECMA-262 and Python read it)."""
    ranges: list[tuple[int, int]] = []
    for code in sorted(codes):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))

    def escape(code: int) -> str:
        return f"\\u{code:04x}"

    parts = "".join(escape(a) if a == b else f"{escape(a)}-{escape(b)}" for a, b in ranges)
    return f"[{'^' if negate else ''}{parts}]"


@functools.cache
def _not_blank() -> str:
    """Storable text (see ``_STORABLE``) with a character that is not whitespace as
    ``str.strip`` sees it. One pattern, not two in an ``allOf``: generators merge those badly.

    The API trims text fields and refuses what is empty after trimming. The class is spelled out
    because regex engines disagree on ``\\s`` (ECMA-262 counts U+FEFF; Python counts
    U+001C-U+001F and U+0085, and so does ``str.strip``).
    """
    # Unpaired surrogates cannot be spelled in a pattern every engine reads alike; JSON from a
    # conforming encoder never carries them, and the server answers 422 if one does.
    spaces = [c for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    return f"^[^\\u0000]*{_char_class(sorted({0, *spaces}), negate=True)}[^\\u0000]*$"


@functools.cache
def _idempotency_key_pattern() -> str:
    """1 to 255 printable characters, not starting or ending with whitespace.

    Header values reach the app as Latin-1 text; ``common.idempotency_key`` trims them and
    requires ``str.isprintable``.
    """
    printable = [c for c in range(256) if chr(c).isprintable()]
    visible = [c for c in printable if not chr(c).isspace()]
    edge, inner = _char_class(visible), _char_class(printable)
    return f"^{edge}(?:{inner}{{0,{IDEMPOTENCY_KEY_MAX - 2}}}{edge})?$"


def _ref(kind: str, name: str) -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def _schema(name: str) -> Schema:
    return _ref("schemas", name)


def _response(name: str) -> Schema:
    return _ref("responses", name)


def _param(name: str) -> Schema:
    return _ref("parameters", name)


def _nullable(schema: Schema) -> Schema:
    kind = schema.get("type")
    assert isinstance(kind, str), "only single-type schemas are made nullable"
    return {**schema, "type": [kind, "null"]}


def _object(
    properties: dict[str, Schema],
    *,
    required: list[str] | None = None,
    closed: bool = True,
    description: str | None = None,
) -> Schema:
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def _json(schema: Schema, description: str, *, headers: dict[str, Schema] | None = None) -> Schema:
    response: Schema = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _json_body(schema: Schema, description: str) -> Schema:
    return {"description": description, "required": True, "content": {JSON: {"schema": schema}}}


def _timestamp(description: str) -> Schema:
    return {"type": "string", "format": "date-time", "description": description}


# -- components: schemas ---------------------------------------------------------------------------


def _error_schemas() -> dict[str, Schema]:
    error = _object(
        {
            "error": {"type": "string", "description": "A stable, machine-readable code."},
            "message": {"type": "string", "description": "What went wrong, for people."},
        },
        closed=False,
        description="Every error the API answers. Some errors add fields (see below).",
    )
    validation: Schema = {
        "allOf": [
            _schema("Error"),
            {
                "type": "object",
                "properties": {
                    "fields": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "description": "Field name → what is wrong with it.",
                    }
                },
            },
        ],
        "description": "A request the API understood but cannot accept (422). `fields` is present "
        "when particular fields are at fault.",
    }
    unavailable: Schema = {
        "allOf": [
            _schema("Error"),
            {
                "type": "object",
                "properties": {
                    "error": {"enum": ["service_unavailable", "overloaded", "not_configured"]},
                    "service": {
                        "type": "string",
                        "enum": ["database", "s3"],
                        "description": "The dependency that cannot serve the request now.",
                    },
                },
                "required": ["service"],
            },
        ],
        "description": "A dependency is down, overloaded or not configured (503).",
    }
    return {"Error": error, "ValidationError": validation, "ServiceUnavailableError": unavailable}


def _account_schemas() -> dict[str, Schema]:
    username: Schema = {
        "type": "string",
        "minLength": 1,
        "maxLength": USERNAME_MAX,
        "pattern": _not_blank(),
        "description": f"Printable text, at most {USERNAME_MAX} characters once leading "
        "and trailing whitespace is trimmed. Compared in NFKC, case-folded form, with look-alike "
        "Cyrillic and Greek letters taken as the Latin ones: `alice`, `ALICE`, `ａlice` and an "
        "all-Cyrillic `аӏісе` are one name.",
    }
    password: Schema = {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_PASSWORD_LENGTH,
        **_STORABLE,
    }
    credentials = _object(
        {"username": username, "password": password},
        closed=False,
        description="Other members are ignored.",
    )
    new_account = _object(
        {
            "username": {
                **username,
                "description": f"{username['description']} A new name may hold only letters, "
                "digits, `_`, `-` and `.`, starts with a letter or a digit, and writes its "
                "letters in one script (422 otherwise).",
            },
            "password": {
                **password,
                "minLength": MIN_PASSWORD_LENGTH,
                "description": f"At least {MIN_PASSWORD_LENGTH} characters (NIST SP 800-63B); "
                "no rules on which characters. Long passphrases are welcome.",
            },
        },
        closed=False,
        description="Other members are ignored.",
    )
    user = _object(
        {
            "id": {"type": "string", "description": "The user's id."},
            "username": {"type": "string"},
        }
    )
    token = _object(
        {
            "access_token": {"type": "string", "description": "A JWT (RS256)."},
            "token_type": {"type": "string", "enum": ["bearer"]},
            "expires_in": {"type": "integer", "minimum": 1, "description": "Seconds."},
        }
    )
    return {
        "Credentials": credentials,
        "NewAccount": new_account,
        "User": user,
        "AccessToken": token,
    }


def _quest_fields() -> dict[str, Schema]:
    return {
        "title": {
            "type": "string",
            "minLength": 1,
            "maxLength": TITLE_MAX,
            "pattern": _not_blank(),
            "description": "Trimmed of leading and trailing whitespace; must not be empty.",
        },
        "description": {
            "type": "string",
            **_STORABLE,
            "maxLength": DESCRIPTION_MAX,
            "description": "Trimmed of leading and trailing whitespace; may be empty.",
        },
        "city": {
            "type": "string",
            "minLength": 1,
            "maxLength": CITY_MAX,
            "pattern": _not_blank(),
            "description": "Trimmed of leading and trailing whitespace; must not be empty.",
        },
        "points": {"type": "integer", "minimum": 1, "maximum": POINTS_MAX},
    }


def _quest_schemas() -> dict[str, Schema]:
    new_quest = _object(
        _quest_fields(),
        required=["title", "city", "points"],
        description="A new quest. `description` defaults to an empty string.",
    )
    patch = {
        **_object(_quest_fields(), required=[], description="The fields to change (at least one)."),
        "minProperties": 1,
    }
    quest = _object(
        {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "city": {"type": "string"},
            "points": {"type": "integer"},
            "owner_id": {"type": "string", "description": "The id of the user who created it."},
            "has_cover": {"type": "boolean"},
            "cover_url": _nullable(
                {"type": "string", "description": "Where the cover image is served, if it has one."}
            ),
            "created_at": _timestamp("When the quest was created."),
            "updated_at": _timestamp("When the quest last changed."),
        }
    )
    page = _object(
        {
            "items": {"type": "array", "items": _schema("Quest"), "maxItems": PAGE_MAX},
            "next_cursor": _nullable(
                {
                    "type": "string",
                    "description": "Pass as `cursor` for the next page; null at the end.",
                }
            ),
        },
        description="Newest quests first.",
    )
    completion = _object(
        {
            "id": {"type": "string"},
            "quest_id": {"type": "string"},
            "user_id": {"type": "string"},
            "points": {"type": "integer", "minimum": 1, "maximum": POINTS_MAX},
            "completed_at": _timestamp("When the quest was completed."),
        }
    )
    return {
        "NewQuest": new_quest,
        "QuestPatch": patch,
        "Quest": quest,
        "QuestPage": page,
        "Completion": completion,
    }


def _image_schemas() -> dict[str, Schema]:
    return {
        "CoverUploaded": _object({"quest_id": {"type": "string"}, "cover_url": {"type": "string"}}),
        "AvatarUploaded": _object(
            {"user_id": {"type": "string"}, "avatar_url": {"type": "string"}}
        ),
    }


_STATUS_WORDS = ["healthy", "degraded", "unhealthy"]


def _health_schemas() -> dict[str, Schema]:
    counts = _object(
        {
            name: {"type": "integer", "minimum": 0}
            for name in ("total", "healthy", "degraded", "unhealthy")
        },
        description="How many services are in each state (those not yet checked count only in "
        "`total`).",
    )
    summary_properties: dict[str, Schema] = {
        "status": {"type": "string", "enum": _STATUS_WORDS},
        "timestamp": {"type": "number", "description": "Seconds since the epoch."},
        "services": _schema("ServiceCounts"),
        "message": {"type": "string"},
    }
    summary = _object(summary_properties)
    millis = _nullable({"type": "number", "minimum": 0, "description": "Milliseconds."})
    epoch = _nullable({"type": "number", "description": "Seconds since the epoch."})
    breaker = _object(
        {
            "name": {"type": "string"},
            "state": {"type": "string", "enum": ["closed", "open", "half_open"]},
            "forced_open": {"type": "boolean"},
            **{
                name: {"type": "integer", "minimum": 0}
                for name in (
                    "total_calls",
                    "successful_calls",
                    "failed_calls",
                    "timed_out_calls",
                    "rejected_calls",
                    "ignored_calls",
                    "cancelled_calls",
                    "slow_calls",
                )
            },
            "failure_rate": {"type": "number", "minimum": 0, "maximum": 1},
            "consecutive_failures": {"type": "integer", "minimum": 0},
            "state_transitions": {"type": "integer", "minimum": 0},
            "last_transition_at": epoch,
            "retry_after": _nullable(
                {"type": "number", "minimum": 0, "description": "Seconds until the next trial."}
            ),
            "half_open_in_flight": {"type": "integer", "minimum": 0},
        }
    )
    service = _object(
        {
            "name": {"type": "string"},
            "status": {"type": "string", "enum": [*_STATUS_WORDS, "unknown"]},
            "critical": {"type": "boolean"},
            "reason": _nullable({"type": "string"}),
            "last_check": epoch,
            "last_success": epoch,
            "response_time_ms": millis,
            "consecutive_failures": {"type": "integer", "minimum": 0},
            "availability_percent": _nullable({"type": "number", "minimum": 0, "maximum": 100}),
            "average_response_time_ms": millis,
            "checks": {"type": "integer", "minimum": 0},
            "last_error": _nullable({"type": "string"}),
            "circuit_breaker": {"oneOf": [_schema("CircuitBreaker"), {"type": "null"}]},
            "details": {
                "type": "object",
                "description": "The service's own figures (the database's connection pool).",
            },
        },
        required=[
            "name",
            "status",
            "critical",
            "reason",
            "last_check",
            "last_success",
            "response_time_ms",
            "consecutive_failures",
            "availability_percent",
            "average_response_time_ms",
            "checks",
            "last_error",
            "circuit_breaker",
        ],
    )
    not_configured = _object(
        {
            "name": {"type": "string"},
            "status": {"type": "string", "const": "not_configured"},
            "critical": {"type": "boolean"},
            "reason": {"type": "string"},
        },
        description="A dependency this server runs without (file storage without an S3 endpoint).",
    )
    any_service: Schema = {"oneOf": [_schema("ServiceHealth"), _schema("UnconfiguredService")]}
    detailed = _object(
        {
            **summary_properties,
            "checks": {"type": "object", "additionalProperties": any_service},
            "ready": {"type": "boolean", "description": "What `/api/v1/health/ready` answers."},
        }
    )
    check_entry = _object(
        {
            "componentId": {"type": "string"},
            "status": {"type": "string", "enum": ["pass", "warn", "fail"]},
            "observedUnit": {"type": "string", "const": "ms"},
            "observedValue": _nullable({"type": "number", "minimum": 0}),
            "time": {"type": "string", "format": "date-time"},
        },
        required=["componentId", "status", "observedUnit", "observedValue"],
    )
    health_json = _object(
        {
            "status": {"type": "string", "enum": ["pass", "warn", "fail"]},
            "version": {"type": "string"},
            "serviceId": {"type": "string"},
            "description": {"type": "string"},
            "checks": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": check_entry},
            },
        },
        required=["status", "version", "serviceId", "description"],
        description="The IETF health check format (draft-inadarei-api-health-check). `checks` "
        "(each service's latency) only for whom `/detailed` would answer: without such a token "
        "(in `authenticated` mode) it is left out.",
    )
    return {
        "ServiceCounts": counts,
        "HealthSummary": summary,
        "HealthJson": health_json,
        "CircuitBreaker": breaker,
        "ServiceHealth": service,
        "UnconfiguredService": not_configured,
        "HealthDetailed": detailed,
        "Liveness": _object({"status": {"type": "string", "const": "alive"}}),
        "Ready": _object({"status": {"type": "string", "const": "ready"}}),
        "NotReady": _object(
            {"status": {"type": "string", "const": "not_ready"}, "reason": {"type": "string"}}
        ),
        "BreakerReset": _object(
            {
                "service": {"type": "string"},
                "state": {"type": "string", "enum": ["closed", "open", "half_open"]},
                "previous_state": {"type": "string", "enum": ["closed", "open", "half_open"]},
            }
        ),
    }


# -- components: parameters, headers, responses ----------------------------------------------------


def _parameters() -> dict[str, Schema]:
    def path(name: str, description: str) -> Schema:
        return {
            "name": name,
            "in": "path",
            "required": True,
            "description": description,
            "schema": {"type": "string", "pattern": _PATH_SEGMENT},
        }

    return {
        "QuestId": path("id", "The quest's id."),
        "UserId": path("id", "The user's id."),
        "ServiceName": path("name", "A dependency's name: `database` or `s3`."),
        "IdempotencyKey": {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "1 to 255 printable characters, unique per intended write. A request "
            "repeated with the same key gets the first answer again (and no second write); the "
            "same key with a different request is refused with 422.",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": IDEMPOTENCY_KEY_MAX,
                "pattern": _idempotency_key_pattern(),
            },
        },
        "Limit": {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": f"Page size, {DEFAULT_PAGE_SIZE} when absent or empty.",
            "allowEmptyValue": True,
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": PAGE_MAX,
                "default": DEFAULT_PAGE_SIZE,
            },
        },
        "Cursor": {
            "name": "cursor",
            "in": "query",
            "required": False,
            "description": "Opaque: a `next_cursor` this API returned. Anything else is refused "
            "with 422.",
            "schema": {"type": "string"},
        },
        "City": {
            "name": "city",
            "in": "query",
            "required": False,
            "description": "Only quests in this city (exact match after trimming). Text with NUL "
            f"or unpaired surrogates, or longer than {CITY_MAX} characters, is refused with 422.",
            "schema": {"type": "string", **_STORABLE},
        },
    }


def _headers() -> dict[str, Schema]:
    return {
        "RetryAfter": {
            "description": "Seconds to wait before trying again.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        },
        "WWWAuthenticate": {
            "description": 'The RFC 6750 challenge, e.g. `Bearer realm="questcity"`.',
            "required": True,
            "schema": {"type": "string"},
        },
        "Degraded": {
            "description": "Present when the answer was served in a degraded mode: `database` "
            "for a copy kept from the last good read, `s3` for the placeholder image.",
            "required": False,
            "schema": {"type": "string", "enum": ["database", "s3"]},
        },
        "IdempotencyKey": {
            "description": "The request's `Idempotency-Key`, when it sent one.",
            "required": False,
            "schema": {"type": "string"},
        },
    }


def _error(description: str) -> Schema:
    return _json(_schema("Error"), description)


def _responses() -> dict[str, Schema]:
    return {
        "BadRequest": _error(
            "The body is not valid JSON (`malformed_json`: not UTF-8, a syntax error, `NaN` or "
            "`Infinity`, a number too large for a float such as `1e999`, or an object key with "
            "an unpaired surrogate escape); or it is JSON beyond the parser's bounds "
            f"(`json_too_complex`: arrays and objects nested more than {MAX_DEPTH} deep, or a "
            f"number literal longer than {MAX_NUMBER_CHARS} characters); or the "
            "`Idempotency-Key` header is not 1 to 255 printable characters "
            "(`invalid_idempotency_key`)."
        ),
        "Unauthorized": _json(
            _schema("Error"),
            "No token, or one that is not valid (malformed, expired, wrongly signed).",
            headers={"WWW-Authenticate": _ref("headers", "WWWAuthenticate")},
        ),
        "Forbidden": _error("The token is valid but may not do this."),
        "NotFound": _error("There is no such resource."),
        "PayloadTooLarge": _json(
            {
                "allOf": [
                    _schema("Error"),
                    {
                        "type": "object",
                        "properties": {
                            "error": {"enum": ["payload_too_large"]},
                            "limit_bytes": {"type": "integer", "minimum": 1},
                        },
                    },
                ],
            },
            f"The body is too large (JSON bodies: {JSON_BODY_LIMIT // 1024} KiB on every route; "
            f"image uploads: {Settings().max_upload_bytes // (1024 * 1024)} MiB by default, "
            "`QUESTCITY_MAX_UPLOAD_BYTES`). Enforced while the body streams in: a "
            "`Content-Length` over the limit is refused before the body is read, a chunked body "
            "as soon as it passes the limit; the connection is then closed "
            "(`Connection: close`). `limit_bytes` is the route's limit.",
        ),
        "UnsupportedMediaType": _error(
            "The upload is empty, or not a PNG, JPEG or WebP image (judged by its bytes)."
        ),
        "ValidationFailed": _json(_schema("ValidationError"), "The request is not acceptable."),
        "TooManyAttempts": _json(
            {
                "allOf": [
                    _schema("Error"),
                    {
                        "type": "object",
                        "properties": {
                            "error": {"enum": ["too_many_attempts"]},
                            "retry_after": {"type": "integer", "minimum": 1},
                        },
                        "required": ["retry_after"],
                    },
                ],
            },
            "Too many attempts: wait `retry_after` seconds (also in `Retry-After`). Checked "
            "before any password is hashed; the delays double as failures go on.",
            headers={"Retry-After": _ref("headers", "RetryAfter")},
        ),
        "ServiceUnavailable": _json(
            _schema("ServiceUnavailableError"),
            "A dependency cannot serve this request now (DESIGN §8); nothing was written.",
            headers={"Retry-After": _ref("headers", "RetryAfter")},
        ),
    }


# -- paths -----------------------------------------------------------------------------------------

_BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def _operation(
    operation_id: str,
    summary: str,
    tag: str,
    responses: dict[str, Schema],
    *,
    description: str | None = None,
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
    security: list[dict[str, list[str]]] | None = None,
) -> Schema:
    operation: Schema = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    operation["security"] = security if security is not None else []
    operation["responses"] = responses
    return operation


def _standard(*codes: str) -> dict[str, Schema]:
    names = {
        "400": "BadRequest",
        "401": "Unauthorized",
        "403": "Forbidden",
        "404": "NotFound",
        "413": "PayloadTooLarge",
        "415": "UnsupportedMediaType",
        "422": "ValidationFailed",
        "503": "ServiceUnavailable",
    }
    return {code: _response(names[code]) for code in codes}


def _degraded() -> dict[str, Schema]:
    return {DEGRADED_HEADER: _ref("headers", "Degraded")}


def _health_paths() -> dict[str, Schema]:
    summary_content = {
        JSON: {"schema": _schema("HealthSummary")},
        HEALTH_JSON_MEDIA_TYPE: {"schema": _schema("HealthJson")},
    }
    staff = (
        "Needs an operator or admin token (unless the server runs with "
        "`QUESTCITY_HEALTH_DETAILS=public`)."
    )
    return {
        "/api/v1/health/": {
            "get": _operation(
                "getHealth",
                "Overall health",
                "health",
                {
                    "200": {
                        "description": "Healthy or degraded: the API can serve.",
                        "content": summary_content,
                    },
                    "503": {
                        "description": "Unhealthy: a critical dependency is down.",
                        "content": summary_content,
                    },
                },
                description="The seed's JSON; `application/health+json` (the IETF format) when "
                "the request's `Accept` asks for it.",
            )
        },
        "/api/v1/health/live": {
            "get": _operation(
                "getLiveness",
                "Liveness probe",
                "health",
                {"200": _json(_schema("Liveness"), "The process serves requests.")},
                description="Depends on no outside service.",
            )
        },
        "/api/v1/health/ready": {
            "get": _operation(
                "getReadiness",
                "Readiness probe",
                "health",
                {
                    "200": _json(_schema("Ready"), "Start-up is complete and not draining."),
                    "503": _json(_schema("NotReady"), "Starting up or shutting down."),
                },
            )
        },
        "/api/v1/health/detailed": {
            "get": _operation(
                "getHealthDetailed",
                "Every service's health and figures",
                "health",
                {
                    "200": _json(_schema("HealthDetailed"), "Every service in detail."),
                    **_standard("401", "403"),
                },
                description=staff,
                security=_BEARER,
            )
        },
        "/api/v1/health/services/{name}": {
            "get": _operation(
                "getServiceHealth",
                "One service's health and figures",
                "health",
                {
                    "200": _json(
                        {"oneOf": [_schema("ServiceHealth"), _schema("UnconfiguredService")]},
                        "The service in detail.",
                    ),
                    **_standard("401", "403", "404"),
                },
                description=staff,
                parameters=[_param("ServiceName")],
                security=_BEARER,
            )
        },
        "/api/v1/health/services/{name}/reset": {
            "post": _operation(
                "resetCircuitBreaker",
                "Close a service's circuit breaker",
                "health",
                {
                    "200": _json(_schema("BreakerReset"), "The breaker is closed."),
                    **_standard("401", "403", "404"),
                },
                description="Needs an admin token. Written to the log as an audit line.",
                parameters=[_param("ServiceName")],
                security=_BEARER,
            )
        },
        "/metrics": {
            "get": _operation(
                "getMetrics",
                "Prometheus metrics",
                "health",
                {
                    "200": {
                        "description": "The Prometheus text exposition format.",
                        "content": {METRICS_MEDIA_TYPE: {"schema": {"type": "string"}}},
                    },
                    **_standard("401", "403"),
                },
                description="Public by default; with `QUESTCITY_METRICS_PUBLIC=false` it needs "
                "an operator or admin token (401/403 otherwise).",
                security=[{}, {"bearerAuth": []}],
            )
        },
    }


def _account_paths() -> dict[str, Schema]:
    credentials = _json_body(_schema("NewAccount"), "The new account's credentials.")
    return {
        "/api/v1/auth/register": {
            "post": _operation(
                "register",
                "Create an account",
                "accounts",
                {
                    "201": {
                        **_json(_schema("User"), "The account was created."),
                        "links": {
                            "GetUserAvatar": {
                                "operationId": "getUserAvatar",
                                "parameters": {"id": "$response.body#/id"},
                            }
                        },
                    },
                    "409": _error("The username is taken (`username_taken`)."),
                    "429": _response("TooManyAttempts"),
                    **_standard("400", "413", "422", "503"),
                },
                body=credentials,
            )
        },
        "/api/v1/auth/token": {
            "post": _operation(
                "createToken",
                "Log in: get an access token",
                "accounts",
                {
                    "200": _json(_schema("AccessToken"), "A player's access token."),
                    "401": _response("Unauthorized"),
                    "429": _response("TooManyAttempts"),
                    **_standard("400", "413", "422", "503"),
                },
                description="401 (`invalid_credentials`) for an unknown user or a wrong password "
                "alike. Failed logins are throttled per account and client (429); a successful "
                "login sets a `questcity_device` cookie, with which this device still gets in "
                "while others are throttled for the account.",
                body=_json_body(_schema("Credentials"), "The account's credentials."),
            )
        },
    }


def _quest_links() -> dict[str, Schema]:
    by_id = {"id": "$response.body#/id"}
    return {
        name: {"operationId": operation_id, "parameters": by_id}
        for name, operation_id in (
            ("GetQuest", "getQuest"),
            ("UpdateQuest", "updateQuest"),
            ("DeleteQuest", "deleteQuest"),
            ("CompleteQuest", "completeQuest"),
            ("PutQuestCover", "putQuestCover"),
            ("GetQuestCover", "getQuestCover"),
        )
    }


def _quest_paths() -> dict[str, Schema]:
    quest_id = [_param("QuestId")]
    created: Schema = {
        "description": "The quest was created (or, for a repeated `Idempotency-Key`, the first "
        "answer again).",
        "headers": {"Idempotency-Key": _ref("headers", "IdempotencyKey")},
        "content": {JSON: {"schema": _schema("Quest")}},
        "links": _quest_links(),
    }
    completed: Schema = {
        "description": "The completion was recorded (or, for a repeated `Idempotency-Key`, the "
        "first answer again).",
        "headers": {"Idempotency-Key": _ref("headers", "IdempotencyKey")},
        "content": {JSON: {"schema": _schema("Completion")}},
    }
    player_only = "The token must be a player's (staff tokens have no account): 403 otherwise."
    return {
        "/api/v1/quests": {
            "get": _operation(
                "listQuests",
                "List quests, newest first",
                "quests",
                {
                    "200": _json(
                        _schema("QuestPage"),
                        "A page of quests (a kept copy while the database is down).",
                        headers=_degraded(),
                    ),
                    **_standard("422", "503"),
                },
                parameters=[_param("City"), _param("Limit"), _param("Cursor")],
            ),
            "post": _operation(
                "createQuest",
                "Create a quest",
                "quests",
                {"201": created, **_standard("400", "401", "403", "413", "422", "503")},
                description=player_only,
                parameters=[_param("IdempotencyKey")],
                body=_json_body(_schema("NewQuest"), "The new quest."),
                security=_BEARER,
            ),
        },
        "/api/v1/quests/{id}": {
            "get": _operation(
                "getQuest",
                "Read a quest",
                "quests",
                {
                    "200": _json(
                        _schema("Quest"),
                        "The quest (a kept copy while the database is down).",
                        headers=_degraded(),
                    ),
                    **_standard("404", "503"),
                },
                parameters=quest_id,
            ),
            "patch": _operation(
                "updateQuest",
                "Change a quest",
                "quests",
                {
                    "200": _json(_schema("Quest"), "The updated quest."),
                    **_standard("400", "401", "403", "404", "413", "422", "503"),
                },
                description="Only the quest's author or an admin may change it (403 otherwise).",
                parameters=quest_id,
                body=_json_body(_schema("QuestPatch"), "The fields to change."),
                security=_BEARER,
            ),
            "delete": _operation(
                "deleteQuest",
                "Delete a quest",
                "quests",
                {
                    "204": {"description": "The quest is gone."},
                    **_standard("401", "403", "404", "503"),
                },
                description="Only the quest's author or an admin may delete it (403 otherwise).",
                parameters=quest_id,
                security=_BEARER,
            ),
        },
        "/api/v1/quests/{id}/complete": {
            "post": _operation(
                "completeQuest",
                "Complete a quest",
                "quests",
                {
                    "201": completed,
                    "409": _error("You have completed this quest already (`conflict`)."),
                    **_standard("400", "401", "403", "404", "422", "503"),
                },
                description=f"{player_only} The request has no body.",
                parameters=[*quest_id, _param("IdempotencyKey")],
                security=_BEARER,
            )
        },
    }


def _image_paths() -> dict[str, Schema]:
    upload: Schema = {
        "description": "The image's bytes. Its type is judged by its leading bytes, not by "
        "`Content-Type`: a body whose first bytes are no accepted image is refused (415) before "
        "the rest is read. At most four uploads are handled at once, one per account; more "
        "wait their turn, within the request's budget, before their bodies are read. The "
        "budget for storing the image counts from the body's last byte.",
        "required": True,
        "content": {
            media_type: {"schema": {"type": "string", "format": "binary"}}
            for media_type in IMAGE_MEDIA_TYPES
        },
    }
    image: Schema = {
        "description": "The image (the placeholder PNG, marked, while file storage is down or "
        "not configured).",
        "headers": {
            DEGRADED_HEADER: _ref("headers", "Degraded"),
            "Cache-Control": {"schema": {"type": "string"}},
            "ETag": {"schema": {"type": "string"}},
            "X-Content-Type-Options": {
                "description": "Always `nosniff`: the bytes are only ever the image type sent.",
                "schema": {"type": "string", "const": "nosniff"},
            },
            "Content-Disposition": {
                "description": "`inline` with a file name of the server's own making, such as "
                '`inline; filename="cover.png"`.',
                "schema": {"type": "string"},
            },
        },
        "content": {
            media_type: {"schema": {"type": "string", "format": "binary"}}
            for media_type in IMAGE_MEDIA_TYPES
        },
    }
    retry_after = {"Retry-After": _ref("headers", "RetryAfter")}
    upload_errors: dict[str, Schema] = {
        **_standard("401", "403", "404", "413", "415"),
        "408": {
            "description": "The body stopped arriving: no byte for the server's header timeout "
            "(`QUESTCITY_HEADER_TIMEOUT`). The connection is closed.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        "429": _json(
            _schema("Error"),
            "This account's earlier upload did not finish within this request's budget "
            "(`too_many_requests`): one upload at a time per account, the next waits its "
            "turn. Retry once it has finished.",
            headers=retry_after,
        ),
        "503": _json(
            {"oneOf": [_schema("ServiceUnavailableError"), _schema("Error")]},
            "A dependency cannot store the upload now (`service` names it; nothing was "
            "written), or every upload slot stayed taken for the request's budget "
            "(`uploads_busy`).",
            headers=retry_after,
        ),
    }
    return {
        "/api/v1/quests/{id}/cover": {
            "put": _operation(
                "putQuestCover",
                "Upload a quest's cover image",
                "images",
                {"200": _json(_schema("CoverUploaded"), "Stored."), **upload_errors},
                description="Only the quest's author or an admin (403 otherwise).",
                parameters=[_param("QuestId")],
                body=upload,
                security=_BEARER,
            ),
            "get": _operation(
                "getQuestCover",
                "A quest's cover image",
                "images",
                {"200": image, **_standard("404", "503")},
                description="404 for an unknown quest and for a quest without a cover.",
                parameters=[_param("QuestId")],
            ),
        },
        "/api/v1/users/me/avatar": {
            "put": _operation(
                "putMyAvatar",
                "Upload the caller's avatar",
                "images",
                {"200": _json(_schema("AvatarUploaded"), "Stored."), **upload_errors},
                description="The token must be a player's (staff tokens have no account): 403 "
                "otherwise; 404 when the token's account no longer exists.",
                body=upload,
                security=_BEARER,
            )
        },
        "/api/v1/users/{id}/avatar": {
            "get": _operation(
                "getUserAvatar",
                "A user's avatar",
                "images",
                {"200": image, **_standard("404", "503")},
                description="404 for an unknown user and for a user without an avatar.",
                parameters=[_param("UserId")],
            )
        },
    }


def _meta_paths() -> dict[str, Schema]:
    return {
        "/openapi.json": {
            "get": _operation(
                "getOpenApiDocument",
                "This document",
                "meta",
                {"200": _json({"type": "object"}, "The OpenAPI 3.1 document of this API.")},
            )
        }
    }


@functools.cache
def _document() -> Schema:
    paths: dict[str, Schema] = {
        **_health_paths(),
        **_account_paths(),
        **_quest_paths(),
        **_image_paths(),
        **_meta_paths(),
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "QuestCity API",
            "version": API_VERSION,
            "description": "City quests: accounts, quests, images, and the health API. Errors "
            'are JSON `{"error": code, "message": text}`. A response served in a degraded mode '
            f"carries `{DEGRADED_HEADER}`.",
        },
        "tags": [
            {"name": "health", "description": "Probes, detailed health, breakers, metrics."},
            {"name": "accounts", "description": "Register and log in."},
            {"name": "quests", "description": "Quests and their completion."},
            {"name": "images", "description": "Quest covers and avatars."},
            {"name": "meta", "description": "About the API itself."},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "RS256 tokens with claims sub, role (player, operator, admin), "
                    "exp, iat, iss.",
                }
            },
            "schemas": {
                **_error_schemas(),
                **_account_schemas(),
                **_quest_schemas(),
                **_image_schemas(),
                **_health_schemas(),
            },
            "parameters": _parameters(),
            "headers": _headers(),
            "responses": _responses(),
        },
    }


def openapi_document() -> dict[str, object]:
    """The document (a fresh copy: callers may change it without touching the cached one)."""
    return copy.deepcopy(_document())


@functools.cache
def openapi_json() -> bytes:
    """The document as served: built and serialised once per process."""
    return json.dumps(_document(), separators=(",", ":"), ensure_ascii=False).encode()
