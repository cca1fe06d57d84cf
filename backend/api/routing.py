"""One route per path, whatever its methods, so that a 405 lists every method the path takes.

Starlette answers 405 from the first route whose path matches; with one ``Route`` per method its
``Allow`` header would name only that route's methods.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.api.errors import ApiError
from backend.domain import ID_MAX, storable

Endpoint = Callable[[Request], Awaitable[Response]]

_TABLES: dict[Callable[..., object], dict[str, Endpoint]] = {}


def resource(path: str, **handlers: Endpoint) -> Route:
    """A route for ``path`` whose handlers are keyed by method: ``resource(p, GET=f, PUT=g)``."""
    table = {method.upper(): handler for method, handler in handlers.items()}
    if "GET" in table:
        table.setdefault("HEAD", table["GET"])

    async def dispatch(request: Request) -> Response:
        return await table[request.method](request)

    dispatch.__name__ = "_".join(h.__name__ for h in handlers.values())
    _TABLES[dispatch] = table
    return Route(path, dispatch, methods=list(table))


def handlers(route: Route) -> dict[str, Callable[..., object]]:
    """Method → handler of ``route`` (a :func:`resource` or a plain ``Route``), HEAD left out."""
    table = _TABLES.get(route.endpoint)
    if table is None:
        table = dict.fromkeys(route.methods or (), route.endpoint)
    return {method: handler for method, handler in table.items() if method != "HEAD"}


def path_id(request: Request, name: str = "id") -> str:
    """A path identifier; one no database could hold, or longer than any id, names nothing (404,
    not a 500)."""
    value: str = request.path_params[name]
    if len(value) > ID_MAX or not storable(value):
        raise ApiError(404, "not_found", "Nothing here has that identifier.")
    return value
