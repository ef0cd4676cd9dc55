"""Per request: an id (the client's `X-Request-ID` if sane, else a new one) on every log line and
every response, a safe-defaults response header, and one access-log line."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import request_id_var

REQUEST_ID_HEADER = "X-Request-ID"
# A client-chosen id is echoed only if it is short and plain, so it cannot forge log structure.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_QUIET_PATHS = ("/health/", "/metrics")  # probes and scrapes: logged at DEBUG only
_MAX_LOGGED_PATH = 200

access_log = logging.getLogger("app.access")


def new_request_id(incoming: str | None) -> str:
    return incoming if incoming and _CLIENT_ID.fullmatch(incoming) else uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        # Not reset afterwards: each request runs in its own task (its own context), and the
        # last-resort 500 handler, which runs outside this middleware, still needs it.
        request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500  # if the app raises before answering, the server answers 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                if not any(name.lower() == b"x-content-type-options" for name, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope.get("path", "")
            access_log.log(
                logging.DEBUG if path.startswith(_QUIET_PATHS) else logging.INFO,
                "%s %s %d",
                scope.get("method", ""),
                path[:_MAX_LOGGED_PATH],
                status,
                extra={
                    "method": scope.get("method", ""),
                    "path": path[:_MAX_LOGGED_PATH],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
