"""Admission control: a bounded number of prediction requests in flight, the rest refused at once.

A request's body is received first, and only then does it take a slot (waiting for a worker,
computing, answering). Past `max_in_flight` the answer is an immediate 503 with `Retry-After`: a
burst costs a cheap refusal, never an unbounded queue of bodies, threads and memory.

Why the body comes first: when a slot was taken on arrival, 60 clients sending their
bodies at a byte every 2 s held every slot, and every prediction got 503 for as long as they went
on; timing them out (app/http/timeouts.py) freed a slot only for the next slow client to take it. A
client still sending holds bytes, not a slot, so the bodies being received or held are bounded
in bytes instead (`max_body_bytes`, the same worst case as the slots: max_in_flight uploads of
the cap's size); a trickle costs almost nothing of that.
"""

from __future__ import annotations

from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import Overloaded
from app.http.responses import send_error
from app.http.routes import guarded


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, max_in_flight: int, retry_after_s: int, max_body_bytes: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.retry_after_s = retry_after_s
        self.max_body_bytes = max_body_bytes
        # One event loop per process, so plain counters are race-free.
        self.in_flight = 0
        self.body_bytes = 0  # of the bodies this process is receiving or holding for a request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not guarded(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        chunks: deque[bytes] = deque()
        held = 0
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client left, or the byte cap has answered 413 and cut it off
                body = message.get("body", b"")
                if self.body_bytes + len(body) > self.max_body_bytes:
                    await self._refuse(f"{self.max_body_bytes} bytes of uploads", scope, receive, send)
                    return
                self.body_bytes += len(body)
                held += len(body)
                chunks.append(body)
                if not message.get("more_body", False):
                    break
            if self.in_flight >= self.max_in_flight:
                await self._refuse(f"{self.max_in_flight} predictions in flight", scope, receive, send)
                return
            self.in_flight += 1
            try:
                await self.app(scope, replaying(chunks, receive), send)
            finally:
                self.in_flight -= 1
        finally:
            self.body_bytes -= held

    async def _refuse(self, limit: str, scope: Scope, receive: Receive, send: Send) -> None:
        exc = Overloaded(
            f"the service is at its limit of {limit}; retry shortly",
            headers={"Retry-After": str(self.retry_after_s)},
        )
        await send_error(exc, scope, receive, send)


def replaying(chunks: deque[bytes], receive: Receive) -> Receive:
    """`receive` for the app: the body already received, chunk by chunk (each let go once
    handed over), then the client's own messages (a disconnect)."""

    async def replayed() -> Message:
        if chunks:
            body = chunks.popleft()
            return {"type": "http.request", "body": body, "more_body": bool(chunks)}
        return await receive()

    return replayed
