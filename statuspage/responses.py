"""Rendered outputs and how they are sent: ETag, Cache-Control, 304, gzip.

An :class:`Output` is rendered once and sent many times, so everything about it (validators,
header lists, the compressed body) is computed once; sending it costs a header lookup or two.
Every answer carries ``ETag`` and ``Cache-Control``, 404s and 503s included.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Sequence

from starlette.responses import Response

Headers = list[tuple[bytes, bytes]]

PAGE_CACHE = "public, max-age=10, stale-while-revalidate=20"
BADGE_CACHE = "public, max-age=60"
MISSING_CACHE = "public, max-age=10"
NO_STORE = "no-store"

HTML = "text/html; charset=utf-8"
JSON = "application/json"
ATOM = "application/atom+xml; charset=utf-8"
SVG = "image/svg+xml; charset=utf-8"

_GZIP_MIN = 1024


class Output:
    """One rendered answer: its bytes, validators and headers, ready to send as they are."""

    __slots__ = ("_gzipped", "_headers", "_not_modified", "body", "etag", "status_code")

    def __init__(
        self,
        body: bytes,
        media_type: str,
        cache_control: str,
        *,
        status_code: int = 200,
        extra: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.body = body
        self.status_code = status_code
        self.etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        common: Headers = [
            (b"cache-control", cache_control.encode()),
            (b"vary", b"Accept-Encoding"),
        ]
        common += [(k.lower().encode(), v.encode()) for k, v in extra]
        self._not_modified = [(b"etag", self.etag.encode()), *common]
        self._headers = [
            (b"content-type", media_type.encode()),
            (b"content-length", str(len(body)).encode()),
            *self._not_modified,
        ]
        self._gzipped: tuple[bytes, str, Headers] | None = None

    def gzipped(self) -> tuple[bytes, str, Headers]:
        """The body compressed once (mtime 0, so the same bytes every time) with its own ETag."""
        if self._gzipped is None:
            body = gzip.compress(self.body, compresslevel=6, mtime=0)
            etag = self.etag[:-1] + '-gz"'
            headers = [
                (b"content-encoding", b"gzip"),
                (b"content-length", str(len(body)).encode()),
                (b"etag", etag.encode()),
            ]
            headers += [h for h in self._headers if h[0] not in (b"content-length", b"etag")]
            self._gzipped = (body, etag, headers)
        return self._gzipped

    def response(self, request_headers: Sequence[tuple[bytes, bytes]]) -> Response:
        """The answer to a request with these (ASGI, lower-cased) headers: 200, 304 or gzip."""
        accept = condition = None
        for key, value in request_headers:
            if key == b"accept-encoding":
                accept = value.decode("latin-1")
            elif key == b"if-none-match":
                condition = value.decode("latin-1")
        wants_gzip = len(self.body) >= _GZIP_MIN and _accepts_gzip(accept)
        body, etag, raw = self.gzipped() if wants_gzip else (self.body, self.etag, self._headers)
        if condition is not None and self.status_code == 200 and _matches(condition, etag):
            return Prepared(304, b"", [(b"etag", etag.encode()), *self._not_modified[1:]])
        return Prepared(self.status_code, body, raw)


class Prepared(Response):
    """A response whose headers are already built (Starlette's ``Response`` without the work)."""

    def __init__(self, status_code: int, body: bytes, raw_headers: Headers) -> None:
        self.status_code = status_code
        self.body = body
        self.raw_headers = raw_headers
        self.background = None


def _matches(condition: str, etag: str) -> bool:
    """``If-None-Match`` (weak comparison, as RFC 9110 asks for it)."""
    if condition.strip() == "*":
        return True
    return any(
        tag.strip().removeprefix("W/") == etag for tag in condition.split(",") if tag.strip()
    )


def _accepts_gzip(accept: str | None) -> bool:
    if not accept or "gzip" not in accept:
        return False
    for item in accept.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=").strip() if "q=" in params else "1"
            try:
                return float(quality) > 0
            except ValueError:
                return False
    return False
