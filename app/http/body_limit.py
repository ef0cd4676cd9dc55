"""The byte cap, enforced on the stream: a body over it is refused without being read.

One cap, `HWR_MAX_UPLOAD_BYTES`, checked in two places that cannot be one: here on the whole
body (plus the multipart framing: `Settings.max_body_bytes`) before anything reads it, and
exactly on each file once it is out of the body (`app.service.images.read_capped`), where the
framing is gone. Both answer `PayloadTooLarge.over(max_upload_bytes)`; admission bounds the
bodies held at once in the same unit (`max_in_flight × max_body_bytes`).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PayloadTooLarge
from app.http.responses import send_error


class BodySizeLimitMiddleware:
    """Refuses request bodies over the upload cap (plus multipart framing) without reading them:
    at once when the Content-Length says so, else as soon as the streamed bytes pass the cap.
    The endpoint then checks the file part itself against the exact `max_upload_bytes`."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int, max_body_bytes: int) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.max_body_bytes = max_body_bytes

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
        exc = PayloadTooLarge.over(self.max_upload_bytes)
        await send_error(exc, scope, receive, send)
