"""The shared parts of the OpenAPI document: answers many routes give, headers, the
``Idempotency-Key`` parameter, the security scheme. Bodies come from the models; limits from the
modules that enforce them, so a changed limit changes the document too."""

from __future__ import annotations

import functools

from backend.api.common import IDEMPOTENCY_KEY_MAX, JSON_BODY_LIMIT
from backend.api.models.errors import (
    Error,
    PayloadTooLargeError,
    ServiceUnavailableError,
    TooManyAttemptsError,
    ValidationError,
)
from backend.api.models.fields import char_class
from backend.api.operations import Reply, Schema
from backend.api.strict_json import MAX_DEPTH, MAX_NUMBER_CHARS
from backend.degradation import DEGRADED_HEADER
from backend.settings import Settings


@functools.cache
def _idempotency_key_pattern() -> str:
    """1 to 255 printable characters, not starting or ending with whitespace: header values reach
    the app as Latin-1 text, and ``common.idempotency_key`` trims them and requires
    ``str.isprintable``."""
    printable = [c for c in range(256) if chr(c).isprintable()]
    visible = [c for c in printable if not chr(c).isspace()]
    edge, inner = char_class(visible), char_class(printable)
    return f"^{edge}(?:{inner}{{0,{IDEMPOTENCY_KEY_MAX - 2}}}{edge})?$"


def header_parameters() -> dict[str, Schema]:
    return {
        "IdempotencyKey": {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": f"1 to {IDEMPOTENCY_KEY_MAX} printable characters, unique per intended "
            "write. A request "
            "repeated with the same key gets the first answer again (and no second write); the "
            "same key with a different request is refused with 422.",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": IDEMPOTENCY_KEY_MAX,
                "pattern": _idempotency_key_pattern(),
            },
        },
        "Actor": {
            "name": "X-QuestCity-Actor",
            "in": "header",
            "required": False,
            "description": "The person an admin tool acts for (1 to 100 printable characters), "
            "named in the audit line; read only with an admin token.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 100},
        },
    }


def headers() -> dict[str, Schema]:
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
        "CacheControl": {"schema": {"type": "string"}},
        "ETag": {"schema": {"type": "string"}},
        "ContentTypeOptions": {
            "description": "Always `nosniff`: the bytes are only ever the image type sent.",
            "schema": {"type": "string", "const": "nosniff"},
        },
        "ContentDisposition": {
            "description": "`inline` with a file name of the server's own making, such as "
            '`inline; filename="cover.png"`.',
            "schema": {"type": "string"},
        },
    }


HEADER_NAMES = {
    "RetryAfter": "Retry-After",
    "WWWAuthenticate": "WWW-Authenticate",
    "Degraded": DEGRADED_HEADER,
    "IdempotencyKey": "Idempotency-Key",
    "CacheControl": "Cache-Control",
    "ETag": "ETag",
    "ContentTypeOptions": "X-Content-Type-Options",
    "ContentDisposition": "Content-Disposition",
}


def responses() -> dict[str, Reply]:
    upload_limit = Settings().max_upload_bytes // (1024 * 1024)
    return {
        "BadRequest": Reply(
            "The body is not valid JSON (`malformed_json`: not UTF-8, a syntax error, `NaN` or "
            "`Infinity`, a number too large for a float such as `1e999`, or an object key with "
            "an unpaired surrogate escape); or it is JSON beyond the parser's bounds "
            f"(`json_too_complex`: arrays and objects nested more than {MAX_DEPTH} deep, or a "
            f"number literal longer than {MAX_NUMBER_CHARS} characters); or the "
            f"`Idempotency-Key` header is not 1 to {IDEMPOTENCY_KEY_MAX} printable characters "
            "(`invalid_idempotency_key`).",
            Error,
        ),
        "Unauthorized": Reply(
            "No token, or one that is not valid (malformed, expired, wrongly signed).",
            Error,
            headers=("WWWAuthenticate",),
        ),
        "Forbidden": Reply("The token is valid but may not do this.", Error),
        "NotFound": Reply("There is no such resource.", Error),
        "PayloadTooLarge": Reply(
            f"The body is too large (JSON bodies: {JSON_BODY_LIMIT // 1024} KiB on every route; "
            f"image uploads: {upload_limit} MiB by default, `QUESTCITY_MAX_UPLOAD_BYTES`). "
            "Enforced while the body streams in: a `Content-Length` over the limit is refused "
            "before the body is read, a chunked body as soon as it passes the limit; the "
            "connection is then closed (`Connection: close`). `limit_bytes` is the route's limit.",
            PayloadTooLargeError,
        ),
        "UnsupportedMediaType": Reply(
            "The upload is empty, or not a PNG, JPEG or WebP image (judged by its bytes).", Error
        ),
        "ValidationFailed": Reply("The request is not acceptable.", ValidationError),
        "TooManyAttempts": Reply(
            "Too many attempts: wait `retry_after` seconds (also in `Retry-After`). Checked "
            "before any password is hashed; the delays double as failures go on.",
            TooManyAttemptsError,
            headers=("RetryAfter",),
        ),
        "ServiceUnavailable": Reply(
            "A dependency cannot serve this request now; nothing was written.",
            ServiceUnavailableError,
            headers=("RetryAfter",),
        ),
    }


SECURITY_SCHEMES: Schema = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "RS256 tokens with claims sub, role (player, operator, admin), exp, iat, "
        "iss.",
    }
}

INFO: Schema = {
    "title": "QuestCity API",
    "version": "1.0.0",
    "description": "City quests: accounts, quests, images, and the health API. Errors are JSON "
    '`{"error": code, "message": text}`. A response served in a degraded mode carries '
    f"`{DEGRADED_HEADER}`.",
}

TAGS = [
    {"name": "health", "description": "Probes, detailed health, breakers, metrics."},
    {"name": "accounts", "description": "Register and log in."},
    {"name": "quests", "description": "Quests and their completion."},
    {"name": "images", "description": "Quest covers and avatars."},
    {"name": "meta", "description": "About the API itself."},
]
