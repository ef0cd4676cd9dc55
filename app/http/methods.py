"""The methods a path answers, for the `Allow` header of a 405.

Starlette builds `Allow` from the first route whose path matched, so a path served by two
routes (`GET /writers` and `POST /writers`) named only one of them. Here every route of the app
is asked, included routers at any depth and mounted routers too, through each route's own
`matches`: a route matches fully only when both the path and the method are its own.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Scope

# The methods worth asking about; a route of another method would be a mistake of ours.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> set[str]:
    """Every method in `HTTP_METHODS` that some route in `routes` serves at the scope's path.

    A mount contributes what its own routes serve; a mounted app without routes (static files)
    contributes nothing, and its 405's own `Allow` stands."""
    # The request's scope was rewritten by the routing it has been through (a mount changes
    # `root_path`): start again from the application's root.
    root_path = scope.get("app_root_path", scope.get("root_path", ""))
    return _allowed(list(routes), scope["path"], root_path)


def _allowed(routes: list[BaseRoute], path: str, root_path: str) -> set[str]:
    allowed: set[str] = set()
    for method in HTTP_METHODS:
        for route in routes:
            # A fresh scope per question: routes may write into the scope they match.
            match, child = route.matches(_probe(path, root_path, method))
            if match is Match.NONE:
                continue
            if isinstance(route, Mount):
                inner = route.routes
                if inner and method in _allowed(inner, path, child.get("root_path", root_path)):
                    allowed.add(method)
                    break
            elif match is Match.FULL:
                allowed.add(method)
                break
    return allowed


def _probe(path: str, root_path: str, method: str) -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": root_path,
        "headers": [],
        "query_string": b"",
        "path_params": {},
    }


def allow_header(routes: Iterable[BaseRoute], scope: Scope, given: str | None) -> str:
    """`Allow` for a 405 at the scope's path: what the routes serve, with the methods the
    refusing route named (`given`), in a fixed order."""
    methods = allowed_methods(routes, scope)
    methods.update(part.strip().upper() for part in (given or "").split(",") if part.strip())
    order = {method: index for index, method in enumerate(HTTP_METHODS)}
    return ", ".join(sorted(methods, key=lambda method: (order.get(method, len(order)), method)))
