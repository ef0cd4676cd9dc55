"""Where a request's blocking work runs (decode → inference, a store call): at most
`max_concurrency` at once per process, each finished and answered once begun.

By default each runs in a worker thread, so the event loop goes on answering other connections,
health probes included, meanwhile. With `in_event_loop` (HWR_COMPUTE_IN_EVENT_LOOP) and one at a
time it runs on the event loop itself: the loop and a thread share one GIL, handed back and forth
at every OpenCV, NumPy or ONNX Runtime call, and each request wakes the thread and then the loop
(more CPU per request; measured in docs/speed.md). The price of the loop: while a prediction
computes (milliseconds; a maximal 40-MP image far longer) this process answers nothing else,
health checks included, and its other uploads wait in the socket buffers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

from anyio import CancelScope, CapacityLimiter, to_thread

T = TypeVar("T")

# The running request's deadline, set by app.http.timeouts; the middleware and the endpoint run in
# the same task, so the endpoint's compute turn can lift it.
current_deadline: ContextVar[CancelScope | None] = ContextVar("deadline", default=None)


def lift_deadline() -> None:
    """From here on the request is finished and answered, however long it takes."""
    scope = current_deadline.get()
    if scope is not None:
        scope.deadline = math.inf


class Compute:
    def __init__(self, max_concurrency: int, in_event_loop: bool) -> None:
        self.limiter = CapacityLimiter(max_concurrency)
        # Several at once need threads; the loop computes one at a time.
        self.in_event_loop = in_event_loop and max_concurrency == 1

    async def run(self, work: Callable[[], T], waits_on_io: bool = False) -> T:
        """`work()` once a turn is free; from then on the request's deadline no longer applies.
        `waits_on_io` (a database call): always in a thread, so the loop never waits on a socket."""
        async with self.limiter:
            lift_deadline()
            if self.in_event_loop and not waits_on_io:
                return work()
            return await to_thread.run_sync(work)
