"""Optional bearer-token authentication for the paths that run a model (app/http/routes.py: predict,
read, v2 models, writers; on when `HWR_API_TOKEN` is set).

Checked in a middleware, before the body is read: an unauthenticated client cannot make the
service receive, spool or parse an upload. Health, metrics, /models and the docs stay open.
"""

from __future__ import annotations

import hmac

from fastapi.security import HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import Unauthorized
from app.http.responses import send_error
from app.http.routes import guarded

# Declared on the model routes only so that OpenAPI shows the scheme; the middleware enforces it.
bearer_scheme = HTTPBearer(auto_error=False, description="`Authorization: Bearer <HWR_API_TOKEN>`")


def token_matches(authorization: str | None, token: str) -> bool:
    scheme, _, credentials = (authorization or "").partition(" ")
    # Constant-time comparison: the time taken tells nothing about how much of a guess was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode())


class BearerAuthMiddleware:
    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and guarded(scope.get("path", ""))
            and not token_matches(Headers(scope=scope).get("authorization"), self.token)
        ):
            exc = Unauthorized("missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
            await send_error(exc, scope, receive, send)
            return
        await self.app(scope, receive, send)
