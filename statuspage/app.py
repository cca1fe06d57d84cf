"""The status page's composition root: ``create_app(store_url, ...)``.

Nothing is opened until the app's lifespan starts (the store's engine, read-only) and everything
is closed when it ends. Time is injected: ``clock`` (wall time: what "today" and "the last 24
hours" mean) and ``monotonic`` (how often the store is asked whether anything changed).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor.i18n import DEFAULT_LANGUAGE, LANGUAGES, N_, negotiate
from monitor.public.settings import PublicSettings
from monitor.store.reader import open_reader
from statuspage import api, feeds, subscribe, svg
from statuspage.cache import Clock, Generation, PageCache, PageUnavailable
from statuspage.html import Renderer
from statuspage.model import Board, GroupView, PageInfo
from statuspage.responses import (
    ATOM,
    BADGE_CACHE,
    HTML,
    JSON,
    MISSING_CACHE,
    NO_STORE,
    PAGE_CACHE,
    SVG,
    Output,
)
from statuspage.source import StoreSource

Make = Callable[[Generation], Awaitable[Output]]

_NOSNIFF = ("X-Content-Type-Options", "nosniff")
_CORS = ("Access-Control-Allow-Origin", "*")
_LOCKED = ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
_VARY_LANGUAGE = ("Vary", "Accept-Language")
"""On every page whose words depend on the reader's language (DESIGN §10)."""


def language(request: Request) -> str:
    """The reader's language: ``?lang=en|ru``, else ``Accept-Language``, else English."""
    return negotiate(request.headers.get("accept-language"), request.query_params.get("lang"))


class StatusPage:
    """The app's state: the renderer, the page's identity and (while running) the cache."""

    def __init__(
        self, page: PageInfo, renderer: Renderer, settings: PublicSettings | None = None
    ) -> None:
        self.page = page
        self.renderer = renderer
        self.settings = settings or PublicSettings()
        """``[page]`` and ``[subscriptions]`` of monitor.toml (time zone, self-refresh, who may
        subscribe)."""
        self.cache: PageCache | None = None
        html_headers = (
            _NOSNIFF,
            ("Content-Security-Policy", renderer.csp),
            ("Referrer-Policy", "no-referrer"),
        )
        self.html_headers = html_headers
        self.page_headers = (*html_headers, _VARY_LANGUAGE)
        """An HTML page's headers when its words are in the reader's language."""
        # The short pages, in each language (``*_in``); the plain attributes are English's.
        self.not_found_in = {
            lang: Output(
                renderer.message(
                    page.name,
                    N_("Not found"),
                    N_("There is no such page on this status page."),
                    lang,
                ),
                HTML,
                MISSING_CACHE,
                status_code=404,
                extra=self.page_headers,
            )
            for lang in LANGUAGES
        }
        self.not_found = self.not_found_in[DEFAULT_LANGUAGE]
        self.not_allowed_in = {
            lang: Output(
                renderer.message(
                    page.name,
                    N_("Method not allowed"),
                    N_("This status page answers GET and HEAD only."),
                    lang,
                ),
                HTML,
                NO_STORE,
                status_code=405,
                extra=(*self.page_headers, ("Allow", "GET, HEAD")),
            )
            for lang in LANGUAGES
        }
        self.not_allowed = self.not_allowed_in[DEFAULT_LANGUAGE]
        self.unknown_badge = Output(
            svg.unknown_badge().encode(),
            SVG,
            MISSING_CACHE,
            status_code=404,
            extra=(_NOSNIFF, _LOCKED),
        )
        self.unavailable_in = {
            lang: Output(
                renderer.message(
                    page.name,
                    N_("Status temporarily unavailable"),
                    N_(
                        "The status page cannot read its data right now. "
                        "Please try again in a minute."
                    ),
                    lang,
                ),
                HTML,
                NO_STORE,
                status_code=503,
                extra=(*self.page_headers, ("Retry-After", "30")),
            )
            for lang in LANGUAGES
        }
        self.unavailable = self.unavailable_in[DEFAULT_LANGUAGE]

    async def serve(
        self, request: Request, name: str, make: Make, lang: str = DEFAULT_LANGUAGE
    ) -> Response:
        """The output ``name`` of the current generation, made by ``make`` on first need;
        ``lang``: the language of the 503 page if the data cannot be read (an output in a
        language has it in its ``name``: each is made and kept once per generation)."""
        headers = request.scope["headers"]
        cache = self.cache
        if cache is None:
            return self.unavailable_in[lang].response(headers)
        try:
            generation = await cache.current()
            output = generation.outputs.get(name) or await generation.output(name, make)
        except PageUnavailable:
            output = self.unavailable_in[lang]
        return output.response(headers)

    # -- the outputs ------------------------------------------------------------------------------

    async def index(self, generation: Generation, lang: str = DEFAULT_LANGUAGE) -> Output:
        history = await generation.history()
        body = self.renderer.index(generation.board, history, lang)
        return Output(body, HTML, PAGE_CACHE, extra=self.page_headers)

    def document(self, build: Callable[[Board], api.Document], *, uptimes: bool = False) -> Make:
        """``uptimes``: the components carry their uptime (read with the long history)."""

        async def make(generation: Generation) -> Output:
            board = generation.board
            if uptimes:
                board = board.with_uptimes(await generation.history())
            body = api.encode(build(board))
            return Output(body, JSON, PAGE_CACHE, extra=(_NOSNIFF, _CORS, _LOCKED))

        return make

    async def feed(self, generation: Generation, lang: str = DEFAULT_LANGUAGE) -> Output:
        body = feeds.atom(generation.board, lang, self.renderer.zone)
        return Output(body, ATOM, PAGE_CACHE, extra=(_NOSNIFF, _CORS, _LOCKED))

    def badge(self, key: str) -> Make:
        async def make(generation: Generation) -> Output:
            found = generation.board.component(key)
            if found is None:  # an image still: a README embedding a wrong name shows why
                return self.unknown_badge
            if isinstance(found, GroupView):
                body = svg.badge(found.name, found.condition, None, maintenance=found.maintenance)
            else:
                history = (await generation.history()).get(found.id)
                uptime = history.uptime if history else None
                body = svg.badge(found.name, found.condition, uptime, maintenance=found.maintenance)
            return Output(body.encode(), SVG, BADGE_CACHE, extra=(_NOSNIFF, _LOCKED))

        return make

    def incident(self, incident_id: int, lang: str = DEFAULT_LANGUAGE) -> Make:
        async def make(generation: Generation) -> Output:
            incident = await generation.incident(incident_id)
            if incident is None:
                return self.not_found_in[lang]
            body = self.renderer.incident(generation.board, incident, lang)
            return Output(body, HTML, PAGE_CACHE, extra=self.page_headers)

        return make


def _routes(page: StatusPage) -> list[Route]:
    """The route table: each endpoint names its output and how to make it."""

    async def index(request: Request) -> Response:
        lang = language(request)
        return await page.serve(
            request, f"index:{lang}", functools.partial(page.index, lang=lang), lang
        )

    def document(
        name: str, build: Callable[[Board], api.Document], *, uptimes: bool = False
    ) -> Route:
        make = page.document(build, uptimes=uptimes)

        async def endpoint(request: Request) -> Response:
            return await page.serve(request, name, make)

        return Route(f"/api/v2/{name}", endpoint, methods=["GET"])

    async def history_atom(request: Request) -> Response:
        # ?lang= only: a feed reader fetches one address (no Vary on Accept-Language here)
        lang = negotiate(None, request.query_params.get("lang"))
        return await page.serve(
            request, f"history.atom:{lang}", functools.partial(page.feed, lang=lang)
        )

    async def badge(request: Request) -> Response:
        key: str = request.path_params["component"]
        return await page.serve(request, f"badge:{key}", page.badge(key))

    async def incident(request: Request) -> Response:
        raw: str = request.path_params["incident_id"]
        lang = language(request)
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            return page.not_found_in[lang].response(request.scope["headers"])
        number = int(raw)
        return await page.serve(
            request, f"incident:{number}:{lang}", page.incident(number, lang), lang
        )

    return [
        Route("/", index, methods=["GET"]),
        Route("/incidents/{incident_id}", incident, methods=["GET"]),
        document("summary.json", api.summary_json, uptimes=True),
        document("status.json", api.status_json),
        document("components.json", api.components_json, uptimes=True),
        document("incidents.json", api.incidents_json),
        document("incidents/unresolved.json", api.unresolved_json),
        document("scheduled-maintenances.json", api.maintenances_json),
        document("scheduled-maintenances/upcoming.json", api.upcoming_json),
        document("scheduled-maintenances/active.json", api.active_json),
        Route("/history.atom", history_atom, methods=["GET"]),
        Route("/badge/{component:path}.svg", badge, methods=["GET"]),  # keys hold a "/"
    ]


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's 404 (no such route) and 405 (not GET or HEAD), as our own pages."""
    page: StatusPage = request.app.state.statuspage
    headers = request.scope["headers"]
    if isinstance(error, HTTPException) and error.status_code == 405:
        if "POST" in (error.headers or {}).get("Allow", ""):  # the subscription endpoints
            subscriptions: subscribe.Subscriptions = request.app.state.subscriptions
            return subscriptions.not_allowed(request)
        return page.not_allowed_in[language(request)].response(headers)
    return page.not_found_in[language(request)].response(headers)


def create_app(
    store_url: str,
    *,
    clock: Clock = time.time,
    monotonic: Clock = time.monotonic,
    public_url: str = "http://127.0.0.1:8082",
    page_name: str = "QuestCity",
    revalidate_after: float = 1.0,
    stale_after: float = 300.0,
    settings: PublicSettings | None = None,
) -> Starlette:
    """The status page over the monitor's store at ``store_url`` (``monitor.toml``'s
    ``[storage] url``). ``public_url`` is where users reach it (links in the JSON and the feed);
    ``settings``: monitor.toml's ``[page]`` and ``[subscriptions]`` (defaults: UTC, no
    subscriptions)."""
    public = settings or PublicSettings()
    info = PageInfo(page_name, public_url.rstrip("/"), refresh=max(public.page.refresh, 0))
    page = StatusPage(info, Renderer(public.page.zone), public)
    subscriptions = subscribe.Subscriptions(page, store_url, clock=clock)
    # The pages link /subscribe exactly when it answers: on, and with a secret (one rule).
    page.page = dataclasses.replace(info, subscribe=subscriptions.enabled)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_reader(store_url) as reader, subscriptions.running():
            source = StoreSource(reader, page.page, stale_after=stale_after)
            page.cache = PageCache(
                source, clock=clock, monotonic=monotonic, revalidate_after=revalidate_after
            )
            try:
                yield
            finally:
                page.cache = None

    app = Starlette(
        routes=[*_routes(page), *subscribe.routes(subscriptions)],
        lifespan=lifespan,
        exception_handlers={404: _http_error, 405: _http_error},
    )
    app.state.statuspage = page
    app.state.subscriptions = subscriptions
    return app
