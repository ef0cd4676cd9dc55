"""The request counter: every response of the paths that run a model, refusals included, with its
whole duration (queueing included) and the requests in flight."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.routes import PREDICT, PREDICT_BATCH, UNKNOWN, endpoint_of
from app.metrics import Metrics
from app.runtime.registry import ModelRegistry


class RequestCounterMiddleware:
    """Counts every response of the model endpoints, errors included (422s from validation, 413s
    from the body limit) — which the endpoint itself never sees. `registry` gives the app's
    model registry (it is replaced when the models load)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, registry: Callable[[], ModelRegistry]) -> None:
        self.app = app
        self.metrics = metrics
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = endpoint_of(scope["path"], self.registry()) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        endpoint, label = route
        status = 500  # if the app raises before responding, the server answers 500
        started = time.perf_counter()
        in_flight = self.metrics.in_flight.labels(endpoint=endpoint)
        in_flight.inc()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            in_flight.dec()
            model = self.registry().models.get(label)
            version = model.manifest.version if model is not None else UNKNOWN
            self.metrics.request_seconds.labels(
                endpoint=endpoint, task=label, version=version, code=f"{status // 100}xx"
            ).observe(time.perf_counter() - started)
            self.metrics.endpoint_requests.labels(endpoint=endpoint, task=label, status=str(status)).inc()
            if endpoint in (PREDICT, PREDICT_BATCH):
                self.metrics.requests.labels(task=label, status=str(status)).inc()
