"""The request counter: every response of the paths that run a model, refusals included."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.routes import PREDICT, PREDICT_BATCH, endpoint_of
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

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.metrics.endpoint_requests.labels(endpoint=endpoint, task=label, status=str(status)).inc()
            if endpoint in (PREDICT, PREDICT_BATCH):
                self.metrics.requests.labels(task=label, status=str(status)).inc()
