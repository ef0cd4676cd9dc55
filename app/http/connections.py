"""Bounds on a connection before the app sees a request: the size and time of a request's head,
and how long an idle connection stays open.

uvicorn's httptools protocol (the one `uvicorn[standard]` picks) has no limit on header size
(four 300 MB headers took a worker to 1.1 GiB) and no timeout for an unfinished head; its
keep-alive timer starts only after a first response, and any byte, even one of a head that never
ends, stops it. So 1,400 connections that sent nothing, or half a head, stayed open until the
process ran out of file descriptors. This subclass adds:

- `max_head_bytes`: a request line and headers longer than this get 431 and the connection closes;
  at most that much (plus one read) is held.
- `head_timeout_s`: once the first byte of a head arrives, the whole head must within this, else
  408 and the connection closes.
- the keep-alive timer (`timeout_keep_alive`) armed when the connection opens too, so a client
  that never sends a byte is closed like an idle keep-alive one.
- a request uvicorn's parser rejects (a malformed request line, a bad header byte) answered 400 in
  the project's JSON error shape, where uvicorn sent plain text without the headers every other
  answer carries.

Every answer made here carries an `X-Request-ID` (new: no request reached the app) and
`X-Content-Type-Options: nosniff`, like those the app makes (`app/http/request_context.py`).

The body is the app's business (`app/http/timeouts.py`: deadline and minimum rate, JSON 408).
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.errors import error_body
from app.logs import request_id_var

# How long a refused connection is drained before it is closed (see `_refuse`).
LINGER_S = 2.0


def plain_error(status: int, reason: str, code: str, message: str, request_id: str) -> bytes:
    """A whole HTTP/1.1 response with the project's JSON error body, that closes the connection."""
    body = json.dumps(error_body(code, message)).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nx-request-id: {request_id}\r\n"
        "x-content-type-options: nosniff\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, max_head_bytes: int, head_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes = max_head_bytes
        self.head_timeout_s = head_timeout_s
        self.head_bytes = 0  # of the head being received
        self.in_body = False  # between a head's end and its message's end
        self.head_timer: asyncio.TimerHandle | None = None
        self.refused = False  # answered 431 or 408 and closing

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms this only after a response: a client that never sends would stay for ever.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return  # answered and closing: what the client still sends is dropped unparsed
        if self.in_body:
            super().data_received(data)
            return
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)
        # Feed no more than the head may still take; whatever follows a finished head is body.
        allowed = self.max_head_bytes - self.head_bytes
        self.head_bytes += min(len(data), allowed)
        super().data_received(data[:allowed])
        if self.refused or self.transport.is_closing() or len(data) <= allowed:
            return
        if not self.in_body:
            self._refuse(
                431,
                "Request Header Fields Too Large",
                "headers_too_large",
                f"the request line and headers exceed {self.max_head_bytes} bytes",
            )
            return
        super().data_received(data[allowed:])

    def on_headers_complete(self) -> None:
        self.in_body = True
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.in_body = False
        self.head_bytes = 0
        super().on_message_complete()

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if not self.in_body and not self.refused and not self.transport.is_closing():
            self._refuse(
                408,
                "Request Timeout",
                "request_timeout",
                f"the request line and headers were not received within {self.head_timeout_s:g} s",
            )

    def _error(self, status: int, reason: str, code: str, message: str) -> bytes:
        """The response, logged under the new request id it carries."""
        request_id = uuid.uuid4().hex
        # Set only around the log call: this connection's callbacks all run in one context.
        token = request_id_var.set(request_id)
        try:
            self.logger.warning("%s: %s", code, message)
        finally:
            request_id_var.reset(token)
        return plain_error(status, reason, code, message, request_id)

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to what its parser rejects (it has logged `msg`), in the JSON shape."""
        if self.cycle is None or self.cycle.response_complete:
            self._refuse(400, "Bad Request", "bad_request", "invalid HTTP request")
            return
        # A request is under way (the bad bytes came in its body, or in one pipelined behind
        # it) and its task may still write: close at once, as uvicorn does, with no linger.
        self.transport.write(self._error(400, "Bad Request", "bad_request", "invalid HTTP request"))
        self.transport.close()

    def _refuse(self, status: int, reason: str, code: str, message: str) -> None:
        """Answer and close. Not at once: closing with the client's bytes unread sends a reset,
        and the client's kernel may then drop our answer unread. So stop writing, discard what
        still comes for at most LINGER_S, and close (or when the client does)."""
        self.refused = True
        self.transport.write(self._error(status, reason, code, message))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)


def guarded_protocol(max_head_bytes: int, head_timeout_s: float) -> Any:
    """uvicorn's `http=` option: the guarded protocol with these limits. A partial of a module-level
    class, so it pickles into the worker processes (they start by spawn)."""
    return functools.partial(
        GuardedHttpToolsProtocol, max_head_bytes=max_head_bytes, head_timeout_s=head_timeout_s
    )
