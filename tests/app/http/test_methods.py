"""A 405 names every method its path answers (schemathesis' ST205: `OPTIONS /writers` said only
`Allow: POST` though `GET /writers` exists too)."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI
from starlette.routing import Mount, Route, Router

from app.http.methods import allow_header, allowed_methods


def allow_set(response) -> set[str]:
    return {method.strip() for method in response.headers["allow"].split(",")}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/writers", {"GET", "POST"}),
        ("PUT", "/writers", {"GET", "POST"}),
        ("DELETE", "/writers", {"GET", "POST"}),
        ("GET", "/writers/5", {"DELETE"}),
        ("GET", "/writers/5/samples", {"POST"}),
        ("GET", "/identify/writer", {"POST"}),
        ("GET", "/predict/letter", {"POST"}),
        ("OPTIONS", "/predict/letter/batch", {"POST"}),
        ("POST", "/health/live", {"GET"}),
        ("DELETE", "/v2/models/letter/infer", {"POST"}),
        ("POST", "/static/app.js", {"GET", "HEAD"}),
    ],
)
def test_a_405_allows_every_method_of_its_path(client, method, path, allowed):
    response = client.request(method, path)
    assert response.status_code == 405
    assert allow_set(response) == allowed
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_nested_included_routers_and_mounted_routers_are_all_asked():
    inner = APIRouter(prefix="/inner")

    @inner.put("/thing")
    def put_thing() -> None: ...

    outer = APIRouter(prefix="/outer")

    @outer.get("/inner/thing")
    def get_thing() -> None: ...

    outer.include_router(inner)
    app = FastAPI()
    app.include_router(outer)

    @app.post("/outer/inner/thing")
    def post_thing() -> None: ...

    async def endpoint(scope, receive, send) -> None: ...

    app.router.routes.append(
        Mount(
            "/sub",
            app=Router([Route("/x", endpoint, methods=["PATCH"]), Route("/x", endpoint, methods=["GET"])]),
        )
    )
    scope = {"type": "http", "path": "/outer/inner/thing", "root_path": ""}
    assert allowed_methods(app.router.routes, scope) == {"GET", "PUT", "POST"}
    assert allow_header(app.router.routes, scope, "PUT") == "GET, POST, PUT"
    # A mount rewrites `root_path` as a request passes through it: the answer must not change.
    inside = {"type": "http", "path": "/sub/x", "root_path": "/sub", "app_root_path": ""}
    assert allowed_methods(app.router.routes, inside) == {"GET", "HEAD", "PATCH"}
    assert allowed_methods(app.router.routes, {"type": "http", "path": "/nowhere"}) == set()
