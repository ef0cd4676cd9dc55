"""Admission control: a bounded number of prediction requests in flight, the rest refused at once.

A request counts from arrival to its last response byte (uploading, waiting for a worker,
computing). Past `max_in_flight` the answer is an immediate 503 with `Retry-After`: a burst costs
a cheap refusal, never an unbounded queue of bodies, threads and memory.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.asgi import MODEL_PREFIXES, send_error
from app.errors import Overloaded


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, max_in_flight: int, retry_after_s: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.retry_after_s = retry_after_s
        # One event loop per process, so a plain counter is race-free.
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(MODEL_PREFIXES):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            exc = Overloaded(
                f"the service is at its limit of {self.max_in_flight} predictions in flight; retry shortly",
                headers={"Retry-After": str(self.retry_after_s)},
            )
            await send_error(exc, scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
