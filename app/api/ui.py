"""`GET /`: the web page (draw or photograph a character, see the answers and what the model saw).

Plain static files (app/static/: HTML, CSS, JS; no framework, nothing fetched from elsewhere), so
the page works offline and costs the service nothing; it calls the public API like any client.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_PATH = "/static"

# The page may load only its own files and talk only to this service; images shown are the
# preview (data:) and the user's own photo (blob:). Also proves "no CDN": the browser enforces it.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

# Not an API endpoint: kept out of the OpenAPI schema.
router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    headers = {"Cache-Control": "no-cache", "Content-Security-Policy": CONTENT_SECURITY_POLICY}
    return FileResponse(STATIC_DIR / "index.html", headers=headers)


def static_files() -> StaticFiles:
    """app.js and style.css, mounted at STATIC_PATH (the page refers to them there)."""
    return StaticFiles(directory=STATIC_DIR)
