"""Request timing: ``questcity_http_request_duration_seconds{method,route,status}``.

``route`` is the matched route's path template (``/api/v1/quests/{id}``), never the raw path, so
the number of series stays bounded whatever clients send; a request no route matched is
``unmatched``. Starlette's router records the route it chose in ``scope["route"]``; the middleware
reads it once the app has answered, and maps it to its full template (mount prefixes included)
through a table built once from the router. So the per-request cost is a timer, a ``send``
wrapper and two dictionary look-ups: no path matching is repeated.

``status`` is the one in ``http.response.start``; 500 when the app raised before starting a
response, 499 (the client-closed-request convention) when the request was cancelled before one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import Histogram
from starlette.routing import BaseRoute, Host, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.observability.metrics import Metrics

__all__ = ["UNMATCHED", "RequestMetricsMiddleware"]

UNMATCHED = "unmatched"
"""The ``route`` label of a request that no route matched."""

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_OTHER_METHOD = "OTHER"
_MOUNT_TAIL = "/{path}"


class RequestMetricsMiddleware:
    """Pure ASGI middleware timing every HTTP request; other scopes pass straight through.

    ``Starlette(..., middleware=[Middleware(RequestMetricsMiddleware, metrics=metrics)])``.
    ``timer`` is for tests (default ``time.perf_counter``).
    """

    def __init__(
        self, app: ASGIApp, *, metrics: Metrics, timer: Callable[[], float] = time.perf_counter
    ) -> None:
        self.app = app
        self._histogram = metrics.http_request_duration
        self._timer = timer
        self._series: dict[tuple[str, str, int], Histogram] = {}
        self._labels = _RouteLabels()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        status = 0

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = self._timer()
        try:
            await self.app(scope, receive, send_and_watch)
        except Exception:
            status = status or 500
            raise
        except BaseException:
            status = status or 499
            raise
        finally:
            self._observe(scope, status or 500, self._timer() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        method: str = scope["method"]
        if method not in _METHODS:
            method = _OTHER_METHOD
        key = (method, self._route(scope), status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self._histogram.labels(key[0], key[1], str(status))
        series.observe(seconds)

    def _route(self, scope: Scope) -> str:
        router = scope.get("router")
        if router is not None:  # Starlette routed this very scope
            route = scope.get("route")
            return UNMATCHED if route is None else self._labels.label(route, router)
        # Routing did not run on this scope: the app raised before it, or something between here
        # and the router routed a copy. Ask the application's router ourselves.
        router = getattr(scope.get("app"), "router", None)
        routes = getattr(router, "routes", None)
        if not routes:
            return UNMATCHED
        route = _match(routes, scope)
        return UNMATCHED if route is None else self._labels.label(route, router)


class _RouteLabels:
    """Route object → its full path template, built from the router's tree on first need."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[BaseRoute, str]] = {}

    def label(self, route: BaseRoute, router: object) -> str:
        entry = self._by_id.get(id(route))
        if entry is None or entry[0] is not route:
            # First request, or a route added since the table was built: build it again (once
            # per unknown route object; one the router's tree does not hold gets its own path,
            # and keeps it across later rebuilds).
            table = _templates(getattr(router, "routes", ()), "")
            for key, known in self._by_id.items():
                table.setdefault(key, known)
            self._by_id = table
            entry = table.get(id(route))
            if entry is None or entry[0] is not route:
                path = getattr(route, "path_format", None)
                entry = (route, path if isinstance(path, str) else UNMATCHED)
                self._by_id[id(route)] = entry
        return entry[1]


def _templates(routes: Iterable[BaseRoute], prefix: str) -> dict[int, tuple[BaseRoute, str]]:
    table: dict[int, tuple[BaseRoute, str]] = {}
    for route in routes:
        if isinstance(route, Mount | Host):
            path = prefix
            if isinstance(route, Mount):
                path += route.path_format.removesuffix(_MOUNT_TAIL)
            inner = route.routes
            if inner:
                # Reached only when no inner route matched (the inner router overwrites
                # scope["route"] when one does).
                table[id(route)] = (route, UNMATCHED)
                for key, value in _templates(inner, path).items():
                    table.setdefault(key, value)
            else:  # an ASGI app mounted whole (static files): the mount is the route
                table[id(route)] = (route, path + _MOUNT_TAIL)
            continue
        path_format = getattr(route, "path_format", None)
        if isinstance(path_format, str):
            table.setdefault(id(route), (route, prefix + path_format))
    return table


def _match(routes: Iterable[BaseRoute], scope: Scope) -> BaseRoute | None:
    """The route Starlette's router would choose for ``scope`` (a full match, else a partial)."""
    partial: BaseRoute | None = None
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.FULL:
            if isinstance(route, Mount | Host) and route.routes:
                return _match(route.routes, {**scope, **child_scope}) or route
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial
