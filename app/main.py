"""The app factory: settings, lifespan (model loading), middleware, error handlers, routers.

Usage: `create_app(Settings(model_dir=Path("models")))`, or `create_app()` to read `HWR_*` from
the environment. Models load when the app starts (the lifespan), e.g. on entering `TestClient`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.errors import HTTP_STATUS_CODES, PayloadTooLarge, ServiceError, error_body
from app.metrics import Metrics, RequestCounterMiddleware
from app.registry import ModelRegistry, load_models
from app.routers import health, models, predict

log = logging.getLogger(__name__)

# Room for the multipart framing (boundaries, part headers) around an upload of the cap's size.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    logging.getLogger("app").setLevel(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Once per process, never per request and never at import.
        app.state.registry = load_models(settings.model_dir, settings.ort_intra_op_threads)
        yield
        app.state.registry = ModelRegistry()

    app = FastAPI(
        title="Handwritten character recognition",
        version="0.1.0",
        description="Upload a photo or scan of one handwritten character; get the top-k labels.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    # Not ready until the lifespan has loaded the models.
    app.state.registry = ModelRegistry()

    app.add_middleware(BodySizeLimitMiddleware, max_upload_bytes=settings.max_upload_bytes)
    # Outermost, so it also counts the 413s the body limit answers.
    app.add_middleware(
        RequestCounterMiddleware, metrics=app.state.metrics, known_tasks=lambda: app.state.registry.models
    )
    install_exception_handlers(app)
    app.include_router(predict.router)
    app.include_router(models.router)
    app.include_router(health.router)
    return app


def install_exception_handlers(app: FastAPI) -> None:
    """Every error leaves as `{"error": {"code", "message"}}`, whoever raised it."""

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        reasons = [
            f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
            for error in exc.errors()
        ]
        return JSONResponse(error_body("validation_error", "; ".join(reasons)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_STATUS_CODES.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def unhandled_error(request: Request, exc: Exception) -> JSONResponse:
        # Last resort: a bug, not a bad input. Log it all; tell the client nothing internal.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)


class BodySizeLimitMiddleware:
    """Refuses request bodies over the upload cap (plus multipart framing) without reading them:
    at once when the Content-Length says so, else as soon as the streamed bytes pass the cap.
    The endpoint then checks the file part itself against the exact `max_upload_bytes`."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.max_body_bytes = max_upload_bytes + MULTIPART_OVERHEAD_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._reject(scope, receive, send)
            return

        received = 0
        cut_off = False  # stopped reading: the app is told the client went away
        answered = False  # our 413 went out, so whatever the app answers is dropped
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, cut_off, answered
            if cut_off:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    cut_off = True
                    if not response_started:
                        await self._reject(scope, receive, send)
                        answered = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if answered:
                return
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        exc = PayloadTooLarge(f"the upload exceeds the limit of {self.max_upload_bytes} bytes")
        response = JSONResponse(error_body(exc.code, exc.message), status_code=exc.status_code)
        await response(scope, receive, send)
