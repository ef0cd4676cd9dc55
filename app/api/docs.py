"""`GET /docs` (Swagger UI) and `GET /redoc` with their scripts and styles served by the service.

FastAPI's own pages load Swagger UI and ReDoc from a CDN (and a favicon from fastapi.tiangolo.com),
so without internet access, or behind an egress firewall, they stay blank. The `fastapi-offline`
package ships those same files (Swagger UI 5, ReDoc 2); only its static files are used here, with
FastAPI's own page builders pointed at them.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_STATIC_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_STATIC_PATH = "/docs-static"


@dataclass(frozen=True)
class Viewer:
    build: Callable[..., HTMLResponse]  # FastAPI's page builder
    title_suffix: str
    files: dict[str, str]  # the builder's URL argument → a file of DOCS_STATIC_DIR
    options: dict[str, Any]  # the builder's other arguments


VIEWERS = {
    "/docs": Viewer(
        get_swagger_ui_html,
        " - Swagger UI",
        files={
            "swagger_js_url": "swagger-ui-bundle.js",
            "swagger_css_url": "swagger-ui.css",
            "swagger_favicon_url": "favicon.png",
        },
        # null: no badge image fetched from validator.swagger.io
        options={"swagger_ui_parameters": {"validatorUrl": None}},
    ),
    "/redoc": Viewer(
        get_redoc_html,
        " - ReDoc",
        files={"redoc_js_url": "redoc.standalone.js", "redoc_favicon_url": "favicon.png"},
        options={"with_google_fonts": False},
    ),
}

# Not API endpoints: kept out of the OpenAPI schema.
router = APIRouter(include_in_schema=False)


def content_security_policy(html: str) -> str:
    """Like the web page's (app/api/ui.py): only this service's files and API. FastAPI's pages
    start the viewer from an inline script, allowed by its hash alone; the viewers style elements
    inline and draw icons from data: URIs. No validator badge, no fonts from elsewhere."""
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _page(request: Request, path: str) -> HTMLResponse:
    """The viewer at `path`: FastAPI's page builder pointed at this service's schema and at the
    viewer's files here (under the root path), served uncached with the page's own CSP."""
    viewer = VIEWERS[path]
    root = request.scope.get("root_path", "")
    files = {argument: f"{root}{DOCS_STATIC_PATH}/{name}" for argument, name in viewer.files.items()}
    response = viewer.build(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=request.app.title + viewer.title_suffix,
        **files,
        **viewer.options,
    )
    html = bytes(response.body).decode()
    headers = {"Cache-Control": "no-cache", "Content-Security-Policy": content_security_policy(html)}
    return HTMLResponse(html, headers=headers)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return _page(request, "/docs")


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return _page(request, "/redoc")


def static_files() -> StaticFiles:
    """Swagger UI's and ReDoc's files, mounted at DOCS_STATIC_PATH."""
    return StaticFiles(directory=DOCS_STATIC_DIR)
