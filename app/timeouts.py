"""A deadline on waiting: each request must be received and given a worker within `timeout_s`.

At the deadline the request is cancelled and answered 408 if it was still waiting for the
client's body (a slow or stalled upload), else 503 with `Retry-After` (it waited too long for a
worker). Once a worker has started on a prediction the deadline is lifted: a thread cannot be
interrupted, so its answer is sent rather than thrown away (the pixel caps bound that work),
and its admission slot stays taken until then.
"""

from __future__ import annotations

import logging
import math
from contextvars import ContextVar

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.asgi import send_error
from app.errors import BodyTimeout, ServerTimeout, ServiceError

log = logging.getLogger(__name__)

# The running request's deadline; the middleware and the endpoint run in the same task.
_deadline: ContextVar[anyio.CancelScope | None] = ContextVar("deadline", default=None)


def lift_deadline() -> None:
    """From here on the request is finished and answered, however long it takes."""
    scope = _deadline.get()
    if scope is not None:
        scope.deadline = math.inf


class RequestTimeoutMiddleware:
    def __init__(self, app: ASGIApp, timeout_s: float, retry_after_s: int) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        awaiting_body = False
        response_started = False

        async def tracked_receive() -> Message:
            nonlocal awaiting_body
            awaiting_body = True
            message = await receive()  # if cancelled here, the flag stays set: a 408
            awaiting_body = False
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            # A response once begun is always completed: never a status line without its body.
            with anyio.CancelScope(shield=True):
                await send(message)

        with anyio.move_on_after(self.timeout_s) as deadline:
            _deadline.set(deadline)
            await self.app(scope, tracked_receive, tracked_send)
        if not deadline.cancelled_caught or response_started:
            return
        exc: ServiceError
        if awaiting_body:
            exc = BodyTimeout(f"the request body was not received within {self.timeout_s:g} s")
        else:
            exc = ServerTimeout(
                f"no worker was free within {self.timeout_s:g} s; retry shortly",
                headers={"Retry-After": str(self.retry_after_s)},
            )
        log.warning("%s: %s", exc.code, exc.message)
        await send_error(exc, scope, receive, send)
