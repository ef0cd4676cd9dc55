"""What the pure-ASGI middlewares share: the one error response, built from a domain error."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from app.errors import ServiceError, error_body


def error_response(exc: ServiceError) -> JSONResponse:
    return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status_code, headers=exc.headers)


async def send_error(exc: ServiceError, scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(exc)(scope, receive, send)
