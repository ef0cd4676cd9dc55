"""What the pure-ASGI middlewares share: the one error response, built from a domain error."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from app.errors import ServiceError, error_body

# The paths that cost real work: admission control and the bearer token guard every path that
# runs a model; app/metrics.py counts them per endpoint and task.
PREDICT_PREFIX = "/predict/"
READ_PREFIX = "/read/"
V2_MODELS_PREFIX = "/v2/models/"  # Open Inference Protocol: infer, metadata (health stays open)
WRITERS_PREFIXES = ("/writers", "/identify/")  # writer enrolment and identification (app/writers/)
MODEL_PREFIXES = (PREDICT_PREFIX, READ_PREFIX, V2_MODELS_PREFIX, *WRITERS_PREFIXES)


def error_response(exc: ServiceError) -> JSONResponse:
    return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status_code, headers=exc.headers)


async def send_error(exc: ServiceError, scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(exc)(scope, receive, send)
