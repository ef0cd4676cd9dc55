"""Starlette's CORS middleware, with its preflight refusals in the project's JSON error shape.

Starlette answers a preflight it refuses (an origin, method or header not allowed) with a plain
text 400 "Disallowed CORS origin"; every other error of the service is
`{"error": {"code", "message"}}`, which clients and log tooling rely on.
"""

from __future__ import annotations

from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers
from starlette.responses import Response

from app.errors import CorsRefused
from app.http.responses import error_response

# Starlette's own headers of a body it no longer sends.
_BODY_HEADERS = frozenset({"content-type", "content-length"})


class JsonCORSMiddleware(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        # The Vary and Access-Control-Allow-* headers Starlette set stay: caches need Vary.
        headers = {k: v for k, v in response.headers.items() if k not in _BODY_HEADERS}
        return error_response(CorsRefused(bytes(response.body).decode(), headers=headers))
