"""Subscriptions on the status page: the form, and the confirm and unsubscribe links.

``GET /subscribe`` shows the form, ``POST /subscribe`` takes a request; ``/subscriptions/confirm``
and ``/subscriptions/unsubscribe`` take the signed links (``?token=…``,
:mod:`monitor.public.tokens`) the monitor's sender puts in its messages. The page sends nothing:
a request writes a subscriber and a confirmation owed to it through the store's inbox
(:mod:`monitor.store.inbox`, the page's only write path), and the monitor sends it.

Choices, where the issue is silent:

- Links never act on ``GET`` for e-mail: mail security scanners fetch every link in a message
  before the reader sees it, and would confirm (or unsubscribe) on their behalf. ``GET`` shows a
  page with one button that ``POST``\\ s the token. A webhook's confirmation link is the
  exception: it is only ever in the JSON POSTed to the subscriber's own endpoint (no scanner
  sees it), and AWS SNS-style receivers confirm by fetching it, so ``GET`` confirms a webhook.
- ``POST /subscriptions/unsubscribe?token=…`` unsubscribes at once: RFC 8058's one-click
  unsubscribe, which the sender's ``List-Unsubscribe-Post`` header advertises (the mail client
  POSTs ``List-Unsubscribe=One-Click``, urlencoded or multipart; the token is in the URL).
- Unsubscribing works whenever the signing secret is set, even with subscriptions turned off
  (links in messages already sent must keep working); the form and confirming need both.
- The answer to a request is the same page whether the address was new, waiting, confirmed or
  asked too recently: nobody learns who is subscribed. Only ``FULL`` (too many waiting) and the
  per-client limit answer otherwise (429 with ``Retry-After``).
- ``POST /subscribe`` from another site is refused (403), and one without the signed token
  ``GET /subscribe`` gave this client re-shows the form (403): see :mod:`statuspage.form`.
- A body over :data:`MAX_BODY` is 413 and any other content type 415 (the reason in words), the
  rest of what is wrong 400, re-showing the form with what was typed (escaped) and every
  problem listed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor.i18n import LANGUAGES, format_duration, negotiate, translations
from monitor.public import tokens
from monitor.store.errors import StoreError
from monitor.store.inbox import SubscriberInbox, open_inbox
from monitor.store.public_models import SubscribeOutcome, Subscriber, SubscriberKind
from statuspage import form as forms
from statuspage.abuse import RateLimiter, client_of
from statuspage.cache import PageUnavailable
from statuspage.form import BadRequest, FormValues, one, read_form, validate
from statuspage.model import Board
from statuspage.responses import HTML, NO_STORE, Output

if TYPE_CHECKING:
    from statuspage.app import StatusPage

log = logging.getLogger(__name__)

FULL_RETRY = 3600
"""Seconds a refused request (too many waiting) is told to wait: waiting ones lapse or are
confirmed over hours, not seconds."""
ALLOW = "GET, HEAD, POST"
LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}
"""Each language in its own words (never translated: a reader looks for their own)."""


class Subscriptions:
    """The subscription endpoints' state: the settings, the signing secret, the per-client limit
    and (while the app runs) the inbox."""

    def __init__(
        self,
        page: StatusPage,
        store_url: str,
        *,
        clock: Callable[[], float],
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.page = page
        self.store_url = store_url
        self.clock = clock
        self.settings = page.settings.subscriptions
        self.secret = self.settings.secret(environ)
        self.enabled = self.settings.enabled and self.secret is not None
        """The form and confirming; unsubscribing needs only the secret. The one rule: the
        pages link ``/subscribe`` when this is true (:func:`statuspage.app.create_app`)."""
        if self.settings.enabled and self.secret is None:
            log.warning(
                "subscriptions are on but %s is not set (at least 32 characters): the page "
                "takes no subscriptions",
                self.settings.secret_env,
            )
        self.kinds = tuple(
            kind.value
            for kind, on in (
                (SubscriberKind.EMAIL, self.settings.email),
                (SubscriberKind.WEBHOOK, self.settings.webhooks),
            )
            if on
        )
        self.limiter = RateLimiter(self.settings.per_client_per_hour, clock=clock)
        self.inbox: SubscriberInbox | None = None
        csp = page.renderer.csp.replace("form-action 'none'", "form-action 'self'")
        self.headers: tuple[tuple[str, str], ...] = (
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", csp),
            ("Referrer-Policy", "no-referrer"),  # the links carry tokens
            ("X-Robots-Tag", "noindex"),
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The inbox open while the app runs (only when there is a secret to check links)."""
        if self.secret is None:
            yield
            return
        async with open_inbox(self.store_url) as inbox:
            self.inbox = inbox
            try:
                yield
            finally:
                self.inbox = None

    # -- answers -----------------------------------------------------------------------------------

    def _answer(
        self,
        request: Request,
        template: str,
        lang: str,
        *,
        status: int = 200,
        extra: Sequence[tuple[str, str]] = (),
        here: str = "/",
        **context: object,
    ) -> Response:
        # The page's own renderer (its languages, zone and footer); ``here`` is where its
        # language switcher points: never a link's URL (a token does not belong in a switcher).
        body = self.page.renderer.render(
            lang, template, self.clock(), here=here, page_name=self.page.page.name, **context
        )
        output = Output(body, HTML, NO_STORE, status_code=status, extra=(*self.headers, *extra))
        return output.response(request.scope["headers"])

    def message(
        self,
        request: Request,
        lang: str,
        title: str,
        *text: str,
        status: int = 200,
        again: bool = False,
        action: str | None = None,
        token: str = "",
        button: str = "",
        extra: Sequence[tuple[str, str]] = (),
    ) -> Response:
        """An outcome page: a title, paragraphs, maybe a one-button form and a way back."""
        return self._answer(
            request,
            "subscription.html",
            lang,
            status=status,
            extra=extra,
            title=title,
            text=text,
            again=again,
            action=action,
            token=token,
            button=button,
        )

    def not_found(self, request: Request) -> Response:
        return self.page.not_found.response(request.scope["headers"])

    def unavailable(self, request: Request, lang: str) -> Response:
        _ = translations(lang).gettext
        return self.message(
            request,
            lang,
            _("Subscriptions temporarily unavailable"),
            _("Your request could not be taken right now. Please try again in a minute."),
            status=503,
            extra=(("Retry-After", "30"),),
        )

    def not_allowed(self, request: Request) -> Response:
        lang = language(request)
        _ = translations(lang).gettext
        return self.message(
            request,
            lang,
            _("Method not allowed"),
            _("This address answers GET, HEAD and POST only."),
            status=405,
            extra=(("Allow", ALLOW),),
        )

    def form(
        self, request: Request, lang: str, board: Board, values: FormValues, status: int = 200
    ) -> Response:
        assert self.secret is not None
        token = forms.mint_form_token(self.secret, client_of(request), self.clock())
        return self._answer(
            request,
            "subscribe.html",
            lang,
            status=status,
            here="/subscribe",
            groups=board.groups,
            kinds=self.kinds,
            form=values,
            errors=values.errors,
            form_token=token,
            languages=[(code, LANGUAGE_NAMES.get(code, code)) for code in LANGUAGES],
        )

    async def board(self) -> Board | None:
        cache = self.page.cache
        if cache is None:
            return None
        try:
            return (await cache.current()).board
        except PageUnavailable:
            return None

    # -- the links ---------------------------------------------------------------------------------

    async def check(
        self, request: Request, lang: str, text: str | None, purpose: str
    ) -> Subscriber | Response:
        """The subscriber a link's token is for, or the page saying why the link does not
        work."""
        _ = translations(lang).gettext
        assert self.secret is not None and self.inbox is not None
        token = tokens.parse(text or "", purpose)
        subscriber = None
        if token is not None:
            subscriber = await self.inbox.subscriber(token.subscriber_id)
        # The MAC first, at no time (so it never expires there), then the expiry: an expired
        # link and a broken one read differently.
        if (
            token is None
            or subscriber is None
            or not tokens.valid(self.secret, token, subscriber.address, 0)
        ):
            return self.message(
                request,
                lang,
                _("This link does not work"),
                _(
                    "The link is incomplete or not valid. Copy the whole link from the message, "
                    "or subscribe again."
                ),
                status=400,
                again=self.enabled,
            )
        if not tokens.valid(self.secret, token, subscriber.address, self.clock()):
            return self.message(
                request,
                lang,
                _("This link has expired"),
                _("Confirmation links work for a limited time. Please subscribe again."),
                status=410,
                again=self.enabled,
            )
        return subscriber


def language(request: Request) -> str:
    """The page's language for this request (``?lang=``, else ``Accept-Language``)."""
    return negotiate(request.headers.get("accept-language"), request.query_params.get("lang"))


def _bad_request(subs: Subscriptions, request: Request, lang: str, error: BadRequest) -> Response:
    _ = translations(lang).gettext
    if error.status == 415:
        text = _("Send the form as application/x-www-form-urlencoded (as a browser does).")
    elif error.status == 413:
        text = _("The request is too large (at most 8 KiB). Send the form as the page has it.")
    else:
        text = _("The form could not be read. Send it again from the subscription page.")
    return subs.message(
        request, lang, _("The request was not understood"), text, status=error.status
    )


async def _request(
    subs: Subscriptions, request: Request, lang: str, values: FormValues
) -> Response:
    """A valid request: counted against its client, then written to the inbox."""
    assert subs.inbox is not None
    _ = translations(lang).gettext
    wait = subs.limiter.take(client_of(request))
    if wait is not None:
        return subs.message(
            request,
            lang,
            _("Too many requests"),
            _(
                "This network has asked for several subscriptions within the hour. Please "
                "try again in %(wait)s."
            )
            % {"wait": format_duration(max(60, wait), lang)},
            status=429,
            extra=(("Retry-After", str(wait)),),
        )
    kind = SubscriberKind(values.kind)
    try:
        outcome = await subs.inbox.subscribe(
            kind,
            values.address,
            values.components,
            values.language,
            subs.clock(),
            resend_after=subs.settings.resend_after,
            max_pending=subs.settings.max_pending,
            pending_for=subs.settings.confirm_within,
        )
    except StoreError as error:
        log.warning("subscription request not taken: %s", error)
        return subs.unavailable(request, lang)
    log.info("subscription request (%s): %s", kind.value, outcome.value)
    if outcome is SubscribeOutcome.FULL:
        return subs.message(
            request,
            lang,
            _("Too many subscriptions waiting"),
            _(
                "Too many subscriptions are waiting to be confirmed right now. Please try "
                "again in an hour."
            ),
            status=429,
            extra=(("Retry-After", str(FULL_RETRY)),),
        )
    # The same page for PENDING, ALREADY and LIMITED: it never tells who is subscribed.
    within = format_duration(subs.settings.confirm_within, lang)
    if kind is SubscriberKind.EMAIL:
        text = _(
            "If this address can be subscribed, a confirmation is on its way. Follow the "
            "link in it within %(within)s to start receiving updates."
        ) % {"within": within}
    else:
        text = _(
            "If this URL can be subscribed, a subscription_confirmation is on its way to it. "
            "Visit its confirm_url within %(within)s to start receiving updates."
        ) % {"within": within}
    change = _(
        "Subscribed already? To change the components or the language, unsubscribe with the "
        "link in any message, then subscribe again."
    )
    return subs.message(request, lang, _("Check your inbox"), text, change)


def routes(subs: Subscriptions) -> list[Route]:
    """``/subscribe`` and the links' endpoints."""

    async def subscribe(request: Request) -> Response:
        # One route for both methods: another method then gets a 405 listing both.
        if not subs.enabled or subs.inbox is None:
            return subs.not_found(request)
        lang = language(request)
        _ = translations(lang).gettext
        if request.method != "POST":
            board = await subs.board()
            if board is None:
                return subs.unavailable(request, lang)
            return subs.form(request, lang, board, FormValues(kind=subs.kinds[0], language=lang))
        if forms.cross_site(request.headers, subs.page.page.url):
            text = _(
                "Subscriptions are taken from this page's own form only. Open the subscription "
                "page and send the form from there."
            )
            return subs.message(request, lang, _("Request refused"), text, status=403, again=True)
        try:
            fields = await read_form(request)
            token = one(fields, forms.FORM_TOKEN)
        except BadRequest as error:
            return _bad_request(subs, request, lang, error)
        board = await subs.board()
        if board is None:
            return subs.unavailable(request, lang)
        try:
            values = validate(
                fields,
                kinds=subs.kinds,
                allow_private=subs.settings.allow_private_webhooks,
                known={c.public_key for c in board.components},
                lang=lang,
            )
        except BadRequest as error:
            return _bad_request(subs, request, lang, error)
        assert subs.secret is not None
        if not forms.form_token_valid(subs.secret, token, client_of(request), subs.clock()):
            # Re-shown with a fresh token: a reader whose form was open too long sends it again.
            values.errors.insert(
                0, _("The form was open too long or was not sent from this page: send it again.")
            )
            return subs.form(request, lang, board, values, status=403)
        if values.errors:
            return subs.form(request, lang, board, values, status=400)
        return await _request(subs, request, lang, values)

    async def confirm(request: Request) -> Response:
        if not subs.enabled or subs.inbox is None:
            return subs.not_found(request)
        lang = language(request)
        _ = translations(lang).gettext
        posted = request.method == "POST"
        try:
            fields = await read_form(request) if posted else {}
            raw = one(fields, "token") or request.query_params.get("token")
            found = await subs.check(request, lang, raw, tokens.CONFIRM)
            if isinstance(found, Response):
                return found
            if found.unsubscribed_at is not None:
                return subs.message(
                    request,
                    lang,
                    _("This subscription was cancelled"),
                    _("It was unsubscribed. To get updates again, please subscribe again."),
                    status=410,
                    again=True,
                )
            # GET confirms a webhook (SNS style; HEAD never does), e-mail only by the button.
            webhook = found.kind is SubscriberKind.WEBHOOK and request.method == "GET"
            if not found.active and not posted and not webhook:
                return subs.message(
                    request,
                    lang,
                    _("Confirm your subscription"),
                    _("Press the button to start receiving updates from this status page."),
                    action=f"/subscriptions/confirm?lang={lang}",
                    token=raw or "",
                    button=_("Confirm subscription"),
                )
            if not found.active:
                await subs.inbox.confirm(found.id, subs.clock())
                log.info("subscription confirmed (%s)", found.kind.value)
        except BadRequest as error:
            return _bad_request(subs, request, lang, error)
        except StoreError as error:
            log.warning("confirmation not taken: %s", error)
            return subs.unavailable(request, lang)
        return subs.message(
            request,
            lang,
            _("Subscription confirmed"),
            _(
                "You will be told about incidents and maintenance. Every message has a link to "
                "unsubscribe."
            ),
        )

    async def unsubscribe(request: Request) -> Response:
        if subs.inbox is None:
            return subs.not_found(request)
        lang = language(request)
        _ = translations(lang).gettext
        posted = request.method == "POST"
        try:
            fields = await read_form(request, multipart=True) if posted else {}
            raw = request.query_params.get("token") or one(fields, "token")
            found = await subs.check(request, lang, raw, tokens.UNSUBSCRIBE)
            if isinstance(found, Response):
                return found
            if found.unsubscribed_at is None and not posted:
                return subs.message(
                    request,
                    lang,
                    _("Unsubscribe"),
                    _("Press the button to stop receiving updates from this status page."),
                    action=f"/subscriptions/unsubscribe?lang={lang}",
                    token=raw or "",
                    button=_("Unsubscribe"),
                )
            if found.unsubscribed_at is None:
                await subs.inbox.unsubscribe(found.id, subs.clock())
                log.info("unsubscribed (%s)", found.kind.value)
        except BadRequest as error:
            return _bad_request(subs, request, lang, error)
        except StoreError as error:
            log.warning("unsubscription not taken: %s", error)
            return subs.unavailable(request, lang)
        return subs.message(
            request,
            lang,
            _("You are unsubscribed"),
            _("Nothing more will be sent to you from this status page."),
            again=subs.enabled,
        )

    return [
        Route("/subscribe", subscribe, methods=["GET", "POST"]),
        Route("/subscriptions/confirm", confirm, methods=["GET", "POST"]),
        Route("/subscriptions/unsubscribe", unsubscribe, methods=["GET", "POST"]),
    ]
