"""The subscription form's fields: the body read within bounds, and every value checked.

Nothing here trusts the client: the body is read up to :data:`MAX_BODY` bytes whatever its
``Content-Length`` says, only ``application/x-www-form-urlencoded`` is parsed (strict UTF-8, at
most :data:`MAX_FIELDS` fields, single-valued fields once), and each value is checked against
its bounds (:data:`MAX_EMAIL`, :data:`MAX_URL`, :data:`MAX_COMPONENTS`) and shape. Problems are
sentences in the reader's language that say what to do; none repeats what was typed (the form
shows it back, escaped by the template).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request

from monitor.i18n import LANGUAGES, translations
from monitor.public.destinations import forbidden, port_allowed

MAX_BODY = 8192
MAX_EMAIL = 254
MAX_URL = 2000
MAX_COMPONENTS = 50
MAX_FIELDS = 100
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"

Gettext = Callable[[str], str]

_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class BadRequest(Exception):
    """A request whose body cannot be read as the form: ``status`` says why (400, 413, 415)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class FormValues:
    """What the form shows: empty, or what was posted (escaped by the template)."""

    kind: str = "email"
    address: str = ""
    components: tuple[str, ...] = ()
    language: str = "en"
    errors: list[str] = field(default_factory=list)


def email_problem(address: str, _: Gettext) -> tuple[str | None, str]:
    """A reason the address cannot be an e-mail address (None: plausible), and the address with
    an internationalised domain in its ASCII form."""
    if len(address) > MAX_EMAIL:
        return _("The e-mail address is too long (at most 254 characters)."), address
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return _("Enter an e-mail address like name@example.org."), address
    if not _LOCAL.fullmatch(local) or local.startswith(".") or ".." in local or local[-1] == ".":
        return _(
            "The part before @ holds characters an e-mail address cannot have here; use "
            "letters, digits and . _ + - only."
        ), address
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return _("The domain of the e-mail address is not valid."), address
    labels = domain.rstrip(".").split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return _("The domain of the e-mail address is not valid."), address
    if labels[-1].isdigit():
        return _("The domain of the e-mail address is not valid."), address
    return None, f"{local}@{domain.rstrip('.')}"


def url_problem(url: str, allow_private: bool, _: Gettext) -> str | None:
    """A reason ``url`` cannot be a webhook's (None: acceptable here; the sender checks every
    address the host resolves to again, before each delivery)."""
    if len(url) > MAX_URL:
        return _("The webhook URL is too long (at most 2000 characters).")
    if not url.isascii() or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return _(
            "The webhook URL must be plain ASCII without spaces: percent-encode the rest, and "
            "write an international domain in its xn-- form."
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return _("The webhook URL is not valid.")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return _("The webhook URL must start with http:// or https:// and name a host.")
    if "@" in parts.netloc:
        return _("The webhook URL must not hold a user name or password.")
    if parts.fragment or url.endswith("#"):
        return _("The webhook URL must not have a #fragment.")
    if port == 0:
        return _("The webhook URL is not valid.")
    if port is not None and not port_allowed(port):
        return _(
            "The webhook URL's port is not allowed: use 80, 443, 8080, 8443 or a port from "
            "1024 up, or leave the port out."
        )
    if not allow_private and _private_host(parts.hostname):
        return _("Webhooks cannot be sent to local or private network addresses.")
    return None


def _private_host(host: str) -> bool:
    """A host that is obviously not on the public internet (a literal address or a local name);
    names are resolved and checked by the sender."""
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return forbidden(address)


async def read_form(request: Request, *, multipart: bool = False) -> dict[str, list[str]]:
    """The urlencoded fields of a request's body, read within :data:`MAX_BODY` bytes. With
    ``multipart``, a ``multipart/form-data`` body is accepted too and skipped (unparsed)."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media not in (FORM, MULTIPART) or (media == MULTIPART and not multipart):
        raise BadRequest(415, "type")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise BadRequest(413, "size")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise BadRequest(413, "size")
    if media == MULTIPART:
        return {}
    try:
        return parse_qs(
            bytes(body).decode("ascii"),
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeError, ValueError):
        raise BadRequest(400, "form") from None


def one(fields: Mapping[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(400, "form")
    return values[0]


def validate(
    fields: Mapping[str, list[str]],
    *,
    kinds: Sequence[str],
    allow_private: bool,
    known: Collection[str],
    lang: str,
) -> FormValues:
    """The form's values, with every problem found in ``errors`` (in the page's language).
    ``kinds``: the kinds of subscription offered; ``known``: the keys of the page's components;
    ``allow_private``: whether webhooks may go to private addresses."""
    _ = translations(lang).gettext
    values = FormValues(language=lang)
    kind = one(fields, "kind") or (kinds[0] if len(kinds) == 1 else "email")
    values.kind = kind if kind in ("email", "webhook") else "email"
    address = (one(fields, "address") or "").strip()
    values.address = address[:MAX_URL]
    if kind not in ("email", "webhook"):
        values.errors.append(_("Choose e-mail or webhook."))
    elif kind not in kinds:
        values.errors.append(
            _("This page does not take e-mail subscriptions.")
            if kind == "email"
            else _("This page does not take webhook subscriptions.")
        )
    elif not address:
        values.errors.append(_("Enter where to send the messages."))
    elif kind == "email":
        problem, fixed = email_problem(address, _)
        if problem:
            values.errors.append(problem)
        else:
            values.address = fixed
    else:
        problem = url_problem(address, allow_private, _)
        if problem:
            values.errors.append(problem)
    chosen = list(dict.fromkeys(fields.get("component", [])))
    if len(chosen) > MAX_COMPONENTS:
        values.errors.append(_("Choose at most 50 components, or none for all of them."))
    elif any(key not in known for key in chosen):
        values.errors.append(
            _("Some of the chosen components are not on this page; reload it and choose again.")
        )
    else:
        values.components = tuple(chosen)
    requested = one(fields, "language")
    if requested is not None and requested not in LANGUAGES:
        values.errors.append(_("Choose one of the languages offered."))
    elif requested is not None:
        values.language = requested
    return values


# -- where a request comes from --------------------------------------------------------------------
#
# Without a check, any web site could make its visitors' browsers post subscriptions (each
# visitor a new client for the per-client limit). Two checks, both needed:
#
# - the browser's own word (:func:`cross_site`): ``Sec-Fetch-Site`` when sent (every current
#   browser), else ``Origin``: a request from another site is refused;
# - a signed, timed form token (:func:`mint_form_token`), put in the form by ``GET /subscribe``
#   and bound to the client it was shown to (:func:`statuspage.abuse.client_key`): a site cannot
#   read our form from its visitors' browsers (no CORS), and a token it fetched itself is for its
#   own address, not theirs. A client whose address changes within the token's life (a phone
#   moving networks) is shown the form again with a fresh token.

FORM_TOKEN = "form_token"
"""The form's hidden field holding the token."""
FORM_TOKEN_FOR = 7200.0
"""Seconds a form token is taken after ``GET /subscribe`` showed it."""
_FORM_PURPOSE = b"subscribe-form"


def _form_mac(secret: bytes, client: str, expires: int) -> str:
    message = b"\0".join((_FORM_PURPOSE, str(expires).encode(), client.encode("utf-8", "replace")))
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def mint_form_token(secret: bytes, client: str, now: float) -> str:
    """A token for the form shown to ``client`` at ``now``: ``<expires>.<mac>``."""
    expires = int(now + FORM_TOKEN_FOR)
    return f"{expires}.{_form_mac(secret, client, expires)}"


def form_token_valid(secret: bytes, token: str | None, client: str, now: float) -> bool:
    """Whether ``token`` was minted by :func:`mint_form_token` for ``client`` and is still
    within its life (and not from the future: a token never outlives one life)."""
    expires_text, dot, mac = (token or "").partition(".")
    if not dot or not expires_text.isdigit() or len(expires_text) > 12:
        return False
    expires = int(expires_text)
    if not now <= expires <= now + FORM_TOKEN_FOR + 1:
        return False
    return hmac.compare_digest(mac, _form_mac(secret, client, expires))


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, lower-case, without the scheme's default port (None:
    not an http(s) URL with a host)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    default = 443 if scheme == "https" else 80
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def cross_site(headers: Mapping[str, str], page_url: str) -> bool:
    """Whether a browser says this request was made by another site.

    ``Sec-Fetch-Site``, when present, decides: ``same-origin`` (our own form) and ``none`` (the
    reader's own doing, e.g. a bookmark) pass, ``same-site`` and ``cross-site`` do not. Without
    it, ``Origin`` decides when it names one: it must be the page's public origin (``[page]
    url`` / ``--public-url``) or the origin the request itself was sent to (its ``Host``: one
    page served under several names, or reached directly behind a proxy that terminates TLS,
    whose scheme is then not compared — a browser never sends another site's origin with our
    host). ``Origin: null`` (sent for a POST from a page whose referrer policy is
    ``no-referrer``, as ours is) and no header at all (an old browser, a script) leave it to the
    form token."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.strip().lower() not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None or origin.strip().lower() == "null":
        return False
    seen = origin_of(origin)
    if seen is None:
        return True
    if seen == origin_of(page_url):
        return False
    authority = seen.partition("://")[2]
    host = headers.get("host", "").strip()
    for scheme in ("http", "https") if host else ():
        own = origin_of(f"{scheme}://{host}")
        if own is not None and own.partition("://")[2] == authority:
            return False
    return True
