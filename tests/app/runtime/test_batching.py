"""The dynamic batcher: who shares a model call, how long it waits, and what each caller gets back."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from app.runtime.batching import BatchObserver, DynamicBatcher


class Recorder(BatchObserver):
    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.depths: list[int] = []

    def batch(self, size: int, queue_seconds: list[float]) -> None:
        self.sizes.append(size)

    def depth(self, waiting: int) -> None:
        self.depths.append(waiting)


def row_sums(batch: np.ndarray) -> dict[str, np.ndarray]:
    """A stand-in model: one head whose logits are each input's sum, so rows can be traced."""
    return {"head": batch.reshape(len(batch), -1).sum(axis=1, keepdims=True)}


def make(max_batch: int = 8, max_wait_s: float = 5.0, predict=row_sums) -> tuple[DynamicBatcher, Recorder]:
    recorder = Recorder()
    return DynamicBatcher(predict, max_batch=max_batch, max_wait_s=max_wait_s, observer=recorder), recorder


def test_a_lone_request_is_not_held_for_the_wait() -> None:
    async def scenario() -> float:
        batcher, _ = make(max_wait_s=5.0)
        batcher.start()
        begin = time.perf_counter()
        with batcher.preparing():
            x = np.full((1, 2, 2), 3.0, dtype=np.float32)
        result = await batcher.infer(x)
        await batcher.close()
        assert result.logits["head"].tolist() == [[12.0]]
        return time.perf_counter() - begin

    assert asyncio.run(scenario()) < 1.0  # far below the 5 s max wait


def test_concurrent_requests_share_one_call_and_get_their_own_rows() -> None:
    async def scenario() -> tuple[list[float], list[int]]:
        batcher, recorder = make(max_batch=8)
        batcher.start()

        async def request(value: float) -> float:
            with batcher.preparing():
                await asyncio.sleep(0.01)  # preparing overlaps for all of them
                x = np.full((1, 2, 2), value, dtype=np.float32)
            return float((await batcher.infer(x)).logits["head"][0, 0])

        answers = await asyncio.gather(*(request(v) for v in range(5)))
        await batcher.close()
        return answers, recorder.sizes

    answers, sizes = asyncio.run(scenario())
    assert answers == [4.0 * v for v in range(5)]
    assert sizes == [5]


def test_batches_never_exceed_max_batch() -> None:
    async def scenario() -> list[int]:
        batcher, recorder = make(max_batch=4)
        batcher.start()

        async def request(value: float) -> None:
            with batcher.preparing():
                await asyncio.sleep(0)
                x = np.full((1, 1, 1), value, dtype=np.float32)
            await batcher.infer(x)

        await asyncio.gather(*(request(v) for v in range(10)))
        await batcher.close()
        return recorder.sizes

    sizes = asyncio.run(scenario())
    assert sum(sizes) == 10 and max(sizes) <= 4


def test_a_partial_batch_waits_at_most_max_wait_for_a_straggler() -> None:
    async def scenario() -> float:
        batcher, recorder = make(max_wait_s=0.05)
        batcher.start()
        never_done = asyncio.Event()

        async def straggler() -> None:
            with batcher.preparing():
                await never_done.wait()

        waiting = asyncio.create_task(straggler())
        await asyncio.sleep(0)
        begin = time.perf_counter()
        with batcher.preparing():
            x = np.ones((1, 1, 1), dtype=np.float32)
        result = await batcher.infer(x)
        elapsed = time.perf_counter() - begin
        waiting.cancel()
        await batcher.close()
        assert recorder.sizes == [1]
        assert result.queue_seconds >= 0.04
        return elapsed

    assert 0.04 <= asyncio.run(scenario()) < 1.0


def test_a_model_error_reaches_every_caller_of_the_batch() -> None:
    def broken(batch: np.ndarray) -> dict[str, np.ndarray]:
        raise RuntimeError("model exploded")

    async def scenario() -> list[BaseException | float]:
        batcher, _ = make(predict=broken)
        batcher.start()

        async def request() -> float:
            with batcher.preparing():
                await asyncio.sleep(0.01)
                x = np.ones((1, 1, 1), dtype=np.float32)
            return float((await batcher.infer(x)).logits["head"][0, 0])

        results = await asyncio.gather(request(), request(), return_exceptions=True)
        await batcher.close()
        return results

    results = asyncio.run(scenario())
    assert all(isinstance(r, RuntimeError) and "exploded" in str(r) for r in results)


def test_infer_before_start_is_refused() -> None:
    async def scenario() -> None:
        batcher, _ = make()
        await batcher.infer(np.ones((1, 1, 1), dtype=np.float32))

    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(scenario())


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        DynamicBatcher(row_sums, max_batch=0, max_wait_s=0.0)
