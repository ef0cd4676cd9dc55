"""Dynamic micro-batching of concurrent single predictions, as Triton's dynamic batcher does it.

Requests preprocess on their own, then hand their model input to the task's `DynamicBatcher`
and await their row of the logits. One dispatcher task per model collects what
has arrived into one model call of at most `max_batch` rows. It waits for more — at most
`max_wait_s` after the first row — only while other requests are still preparing their input:
a lone client never pays the delay, a crowd shares one call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from anyio import to_thread

Logits = dict[str, np.ndarray]


class BatchResult(NamedTuple):
    logits: Logits  # this input's row: 1×labels per head
    queue_seconds: float  # from `infer` to the start of its batch's model call
    inference_seconds: float  # the batch's model call


@dataclass
class _Item:
    x: np.ndarray  # one model input, without the batch axis
    future: asyncio.Future[BatchResult]
    arrived: float = field(default_factory=time.perf_counter)


class BatchObserver:
    """What a batcher reports; `app.metrics.Metrics.batch_observer` exports it to Prometheus."""

    def batch(self, size: int, queue_seconds: list[float]) -> None: ...

    def depth(self, waiting: int) -> None: ...


class DynamicBatcher:
    """`await infer(x)` → this input's `BatchResult`.

    Call `preparing()` around the work that produces `x`, so the dispatcher knows more is coming.
    Lives on one event loop: `start()` there, `await close()` there.
    """

    def __init__(
        self,
        predict: Callable[[np.ndarray], Logits],
        max_batch: int,
        max_wait_s: float,
        observer: BatchObserver | None = None,
        in_event_loop: bool = False,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.predict = predict
        # The model call on the loop itself, as app/runtime/compute.py runs predictions; else in a thread.
        self.in_event_loop = in_event_loop
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.observer = observer or BatchObserver()
        self._waiting: list[_Item] = []
        self._preparing = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._dispatch_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for item in self._waiting:
            item.future.cancel()
        self._waiting.clear()

    @contextmanager
    def preparing(self) -> Iterator[None]:
        """While inside, the dispatcher may hold a partial batch for this request's input."""
        self._preparing += 1
        try:
            yield
        finally:
            self._preparing -= 1
            self._changed.set()

    async def infer(self, x: np.ndarray) -> BatchResult:
        if self._task is None:
            raise RuntimeError("the batcher is not running")
        item = _Item(x, asyncio.get_running_loop().create_future())
        self._waiting.append(item)
        self.observer.depth(len(self._waiting))
        self._changed.set()
        return await item.future

    async def _dispatch_forever(self) -> None:
        while True:
            await self._next_batch_ready()
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            self.observer.depth(len(self._waiting))
            await self._run(batch)

    async def _next_batch_ready(self) -> None:
        """Until a batch is full, or has waited `max_wait_s`, or nobody else is preparing."""
        while not self._waiting:
            self._changed.clear()
            await self._changed.wait()
        deadline = self._waiting[0].arrived + self.max_wait_s
        while len(self._waiting) < self.max_batch and self._preparing > 0:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return

    async def _run(self, batch: list[_Item]) -> None:
        started = time.perf_counter()
        self.observer.batch(len(batch), [started - item.arrived for item in batch])
        try:
            inputs = np.stack([item.x for item in batch])
            if self.in_event_loop:
                logits = self.predict(inputs)
            else:
                logits = await to_thread.run_sync(self.predict, inputs)
        except Exception as exc:  # every waiting request gets the model's error, not a hang
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        seconds = time.perf_counter() - started
        for row, item in enumerate(batch):
            if not item.future.done():  # its request may have been cancelled meanwhile
                own = {head: values[row : row + 1] for head, values in logits.items()}
                item.future.set_result(BatchResult(own, started - item.arrived, seconds))
