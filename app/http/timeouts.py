"""A deadline on waiting: each request must be received and given a worker within `timeout_s`.

At the deadline the request is cancelled and answered 408 if it was still waiting for the
client's body (a slow or stalled upload), else 503 with `Retry-After` (it waited too long for a
worker). Once a worker has started on a prediction the deadline is lifted: a thread cannot be
interrupted, so its answer is sent rather than thrown away (the pixel caps bound that work),
and its admission slot stays taken until then.

A body must also come at `min_bytes_per_s` on average once its first `rate_grace_s` have passed
(a 408 as soon as it falls behind): without that, a client sending a byte every 2 s held its
connection and the bytes it had sent for the whole deadline.
"""

from __future__ import annotations

import logging
import math

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import BodyTimeout, ServerTimeout, ServiceError
from app.http.responses import send_error
from app.runtime.compute import current_deadline

log = logging.getLogger(__name__)


class RequestTimeoutMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        timeout_s: float,
        retry_after_s: int,
        min_bytes_per_s: int = 0,
        rate_grace_s: float = 0.0,
    ) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.min_bytes_per_s = min_bytes_per_s
        self.rate_grace_s = rate_grace_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        awaiting_body = False
        too_slow = False
        body_done = False
        received = 0
        response_started = False
        started = anyio.current_time()

        async def tracked_receive() -> Message:
            nonlocal awaiting_body, too_slow, body_done, received
            awaiting_body = True
            request_deadline = deadline.deadline
            rate_deadline = math.inf if body_done else self._rate_deadline(started, received)
            too_slow = rate_deadline < request_deadline
            if too_slow:
                # One more deadline on this wait: by then the bytes received are below the rate,
                # so the request is cancelled (a 408) and its admission slot freed.
                deadline.deadline = rate_deadline
            message = await receive()  # if cancelled here, the flags stay set: a 408
            if too_slow and deadline.deadline == rate_deadline:  # not lifted meanwhile
                deadline.deadline = request_deadline
            awaiting_body = too_slow = False
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = body_done or not message.get("more_body", False)
            else:
                body_done = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            # A response once begun is always completed: never a status line without its body.
            with anyio.CancelScope(shield=True):
                await send(message)

        with anyio.move_on_after(self.timeout_s) as deadline:
            current_deadline.set(deadline)
            await self.app(scope, tracked_receive, tracked_send)
        if not deadline.cancelled_caught or response_started:
            return
        exc: ServiceError
        if too_slow:
            exc = BodyTimeout(
                f"the request body came slower than {self.min_bytes_per_s} bytes/s"
                f" after its first {self.rate_grace_s:g} s"
            )
        elif awaiting_body:
            exc = BodyTimeout(f"the request body was not received within {self.timeout_s:g} s")
        else:
            exc = ServerTimeout(
                f"no worker was free within {self.timeout_s:g} s; retry shortly",
                headers={"Retry-After": str(self.retry_after_s)},
            )
        log.warning("%s: %s", exc.code, exc.message)
        await send_error(exc, scope, receive, send)

    def _rate_deadline(self, started: float, received: int) -> float:
        """When `received` bytes fall below the minimum rate (after the grace period); inf if off."""
        if not self.min_bytes_per_s:
            return math.inf
        return started + self.rate_grace_s + received / self.min_bytes_per_s
