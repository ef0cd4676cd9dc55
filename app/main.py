"""The app factory: settings, lifespan (model loading), middleware, error handlers, routes.

Usage: `create_app(Settings(model_dir=Path("models")))`, or `create_app()` to read `HWR_*` from
the environment. Models load when the app starts (the lifespan), e.g. on entering `TestClient`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import cv2
from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartParser

from app.api import docs, health, models, predict, read, ui, v2, writers
from app.config import Settings
from app.errors import HTTP_STATUS_CODES, ServiceError, error_body
from app.http.admission import AdmissionMiddleware
from app.http.auth import BearerAuthMiddleware, bearer_scheme
from app.http.body_limit import BodySizeLimitMiddleware
from app.http.cors import JsonCORSMiddleware
from app.http.methods import allow_header
from app.http.metrics import RequestCounterMiddleware
from app.http.request_context import REQUEST_ID_HEADER, RequestContextMiddleware
from app.http.responses import error_response
from app.http.timeouts import RequestTimeoutMiddleware
from app.logs import request_id_var, stamp_request_ids
from app.metrics import Metrics, forget_this_process
from app.runtime.batching import DynamicBatcher
from app.runtime.compute import Compute
from app.runtime.memory import fix_mmap_threshold, keep_trimmed
from app.runtime.registry import ModelRegistry, load_models
from app.runtime.writers import Writers

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    logging.getLogger("app").setLevel(settings.log_level)
    stamp_request_ids()
    # Starlette offers this threshold only as a class attribute, so it is per process.
    MultiPartParser.spool_max_size = settings.upload_memory_bytes

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Once per process, never per request and never at import.
        if settings.opencv_threads:
            cv2.setNumThreads(settings.opencv_threads)
        fix_mmap_threshold(settings.malloc_mmap_threshold_bytes)
        app.state.registry = load_models(
            settings.model_dir,
            settings.ort_intra_op_threads,
            settings.model_variant,
            settings.inference_max_batch,
            settings.ort_cpu_mem_arena,
        )
        app.state.batchers = start_batchers(
            app.state.registry, settings, app.state.metrics, app.state.compute.in_event_loop
        )
        app.state.writers.load()
        app.state.metrics.workers_serving.set(int(app.state.registry.ready))
        app.state.metrics.loaded(
            (task, m.manifest.name, m.manifest.version) for task, m in app.state.registry.models.items()
        )
        trimmer = asyncio.create_task(keep_trimmed(settings.malloc_trim_margin_bytes))
        yield
        trimmer.cancel()
        app.state.metrics.workers_serving.set(0)
        for batcher in app.state.batchers.values():
            await batcher.close()
        app.state.batchers = {}
        app.state.writers.close()
        app.state.registry = ModelRegistry()
        forget_this_process()

    app = FastAPI(
        title="Handwritten character recognition",
        version="0.1.0",
        description="Upload a photo or scan of one handwritten character; get the top-k labels.",
        lifespan=lifespan,
        # Served by app/api/docs.py with files of its own instead of a CDN's.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.compute = Compute(settings.max_concurrency, settings.compute_in_event_loop)
    # Not ready until the lifespan has loaded the models.
    app.state.registry = ModelRegistry()
    app.state.batchers = {}
    app.state.writers = Writers(settings)

    install_middleware(app, settings)
    install_exception_handlers(app)
    # Starlette's trailing-slash redirect builds an absolute Location from the client's Host
    # header, so a forged Host would send the client elsewhere: a path not routed is a 404.
    app.router.redirect_slashes = False
    # The scheme is declared only when enforced, so OpenAPI tells clients the truth.
    auth = [Security(bearer_scheme)] if settings.api_token is not None else []
    app.include_router(predict.router, dependencies=auth)
    app.include_router(read.router, dependencies=auth)
    app.include_router(v2.router, dependencies=auth)
    app.include_router(writers.router, dependencies=auth)
    app.include_router(models.router)
    app.include_router(health.router)
    app.include_router(ui.router)
    app.mount(ui.STATIC_PATH, ui.static_files(), name="static")
    app.include_router(docs.router)
    app.mount(docs.DOCS_STATIC_PATH, docs.static_files(), name="docs-static")
    return app


def start_batchers(
    registry: ModelRegistry, settings: Settings, metrics: Metrics, in_event_loop: bool
) -> dict[str, DynamicBatcher]:
    """One running dynamic batcher per loaded model; none when `batch_max_size` is 1 (off)."""
    if settings.batch_max_size == 1:
        return {}
    batchers = {}
    for task, model in registry.models.items():
        batcher = DynamicBatcher(
            model.classifier.predict,
            max_batch=settings.batch_max_size,
            max_wait_s=settings.batch_max_wait_ms / 1000,
            observer=metrics.batch_observer(task),
            in_event_loop=in_event_loop,
        )
        batcher.start()
        batchers[task] = batcher
    return batchers


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Outermost last. A request meets: request id + access log → CORS → metrics → bearer token
    → deadline → byte cap → admission (once the body is in) → the routes. So every answer,
    refusals included, carries the request id and CORS headers and is counted; unauthenticated
    requests take no admission slot; the deadline covers the upload and waiting for a worker; a
    body over the cap is refused before admission holds any of it."""
    max_in_flight = settings.max_concurrency + settings.max_queue
    app.add_middleware(
        AdmissionMiddleware,
        max_in_flight=max_in_flight,
        retry_after_s=settings.retry_after_s,
        max_body_bytes=max_in_flight * settings.max_body_bytes,
    )
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_upload_bytes=settings.max_upload_bytes,
        max_body_bytes=settings.max_body_bytes,
    )
    app.add_middleware(
        RequestTimeoutMiddleware,
        timeout_s=settings.request_timeout_s,
        retry_after_s=settings.retry_after_s,
        min_bytes_per_s=settings.body_min_bytes_per_s,
        rate_grace_s=settings.body_rate_grace_s,
    )
    if settings.api_token is not None:
        app.add_middleware(BearerAuthMiddleware, token=settings.api_token.get_secret_value())
    app.add_middleware(
        RequestCounterMiddleware, metrics=app.state.metrics, registry=lambda: app.state.registry
    )
    if settings.cors_origins:
        # Closed by default: without this middleware browsers refuse cross-origin reads.
        app.add_middleware(
            JsonCORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER, "Retry-After"],
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware)


def install_exception_handlers(app: FastAPI) -> None:
    """Every error leaves as `{"error": {"code", "message"}}`, whoever raised it."""

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc)

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
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; a client (and
            # RFC 9110) needs every method the path answers.
            headers["Allow"] = allow_header(app.router.routes, request.scope, headers.get("Allow"))
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def unhandled_error(request: Request, exc: Exception) -> JSONResponse:
        # Last resort: a bug, not a bad input. Log it all; tell the client nothing internal.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        # This handler runs outside RequestContextMiddleware, so it adds the id itself.
        request_id = request_id_var.get()
        headers = {REQUEST_ID_HEADER: request_id} if request_id else None
        return JSONResponse(
            error_body("internal_error", "internal server error"), status_code=500, headers=headers
        )
