"""Admission (503 + Retry-After instead of an unbounded queue), the worker cap, and request deadlines.

A prediction held up mid-computation (`gated_preprocess`) leaves the service answering others only
when it computes in a worker thread (`compute_in_event_loop=False`, the default); with
`compute_in_event_loop=True` one prediction at a time is computed on the event loop itself
(app/runtime/compute.py).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import pytest

import app.service.pipeline as predict_module
from app.config import Settings
from app.http.admission import AdmissionMiddleware
from app.main import create_app
from tests.app.conftest import ONE_IN_A_THREAD, predict_scope

WAIT = 10  # seconds a test waits for something that should happen at once; never reached when green


@pytest.fixture
def gated_preprocess(monkeypatch):
    """Preprocessing that signals `entered` and then waits for `release` (or `delay` seconds)."""

    class Gate:
        entered = threading.Event()
        release = threading.Event()
        delay: float | None = None
        active = 0
        most_active = 0
        lock = threading.Lock()

    real = predict_module.preprocess

    def gated(image, config):
        with Gate.lock:
            Gate.active += 1
            Gate.most_active = max(Gate.most_active, Gate.active)
        Gate.entered.set()
        try:
            if Gate.delay is not None:
                time.sleep(Gate.delay)
            else:
                assert Gate.release.wait(WAIT)
            return real(image, config)
        finally:
            with Gate.lock:
                Gate.active -= 1

    monkeypatch.setattr(predict_module, "preprocess", gated)
    return Gate


def post(client, data: bytes):
    return client.post("/predict/letter", files={"file": ("a.png", data)})


@contextmanager
def one_held(client, data: bytes, gate) -> Iterator[Future]:
    """One prediction posted from a thread and held in preprocessing (`gate`, the gated_preprocess
    fixture) while the block runs; released as the block ends, and finished by the time it has."""
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(post, client, data)
        assert gate.entered.wait(WAIT)
        try:
            yield held
        finally:
            gate.release.set()


def test_over_the_in_flight_limit_is_refused_at_once(make_client, model_dir, letter_png, gated_preprocess):
    client = make_client(model_dir, **ONE_IN_A_THREAD, max_queue=0, retry_after_s=3)
    with one_held(client, letter_png, gated_preprocess) as first:
        started = time.perf_counter()
        refused = post(client, letter_png)
        assert time.perf_counter() - started < 2  # answered at once, not queued
        assert refused.status_code == 503 and refused.headers["retry-after"] == "3"
        assert refused.json()["error"]["code"] == "overloaded"
        assert client.get("/health/ready").status_code == 200  # operations are never limited
    assert first.result(WAIT).status_code == 200
    assert post(client, letter_png).status_code == 200  # the slot was given back


def test_queued_requests_wait_for_one_of_the_workers(make_client, model_dir, letter_png, gated_preprocess):
    gated_preprocess.delay = 0.4  # long enough for the first two to overlap on a busy machine
    client = make_client(model_dir, max_concurrency=2, max_queue=4)
    with ThreadPoolExecutor(6) as pool:
        statuses = [
            f.result(WAIT).status_code for f in [pool.submit(post, client, letter_png) for _ in range(6)]
        ]
    assert statuses == [200] * 6  # 6 = 2 workers + 4 queued: nobody refused
    assert gated_preprocess.most_active == 2  # never more than max_concurrency at once


def test_metrics_count_the_refusals(make_client, model_dir, letter_png, gated_preprocess):
    client = make_client(model_dir, **ONE_IN_A_THREAD, max_queue=0)
    with one_held(client, letter_png, gated_preprocess) as first:
        post(client, letter_png)
    first.result(WAIT)
    assert 'hwr_requests_total{status="503",task="letter"} 1.0' in client.get("/metrics").text


def test_work_past_the_deadline_is_finished_and_keeps_its_slot(
    make_client, model_dir, letter_png, gated_preprocess
):
    client = make_client(model_dir, **ONE_IN_A_THREAD, max_queue=0, request_timeout_s=0.2)
    with one_held(client, letter_png, gated_preprocess) as slow:
        time.sleep(0.4)  # past the deadline; the worker thread is still busy
        # The running work still holds its admission slot, so the service cannot pile up work.
        assert post(client, letter_png).json()["error"]["code"] == "overloaded"
    response = slow.result(WAIT)
    # A thread cannot be interrupted: its answer is sent whole, late, rather than thrown away.
    assert response.status_code == 200 and response.json()["predictions"]


def test_waiting_for_a_worker_counts_against_the_deadline(
    make_client, model_dir, letter_png, gated_preprocess
):
    client = make_client(model_dir, **ONE_IN_A_THREAD, max_queue=1, request_timeout_s=0.5)
    with one_held(client, letter_png, gated_preprocess) as busy:
        started = time.perf_counter()
        waiting = post(client, letter_png)
        assert time.perf_counter() - started < 2  # cancelled at its deadline, not when the worker frees
    busy.result(WAIT)
    assert waiting.status_code == 503 and waiting.json()["error"]["code"] == "timeout"
    assert waiting.headers["retry-after"] == "1"


def test_one_at_a_time_is_computed_on_the_event_loop(make_client, model_dir, letter_png, monkeypatch):
    where: list[str] = []
    real = predict_module.preprocess

    def recording(image, config):
        try:
            asyncio.get_running_loop()
            where.append("event loop")
        except RuntimeError:
            where.append("worker thread")
        return real(image, config)

    monkeypatch.setattr(predict_module, "preprocess", recording)
    for overrides in ({"compute_in_event_loop": True}, {}, {"max_concurrency": 2}):
        assert post(make_client(model_dir, **overrides), letter_png).status_code == 200
    assert where == ["event loop", "worker thread", "worker thread"]  # more at once need threads


def test_by_default_health_is_answered_while_a_prediction_computes(
    make_client, model_dir, letter_png, gated_preprocess
):
    # Regression: on the event loop (the former default) a running prediction held up the probes.
    client = make_client(model_dir)
    with one_held(client, letter_png, gated_preprocess) as computing:
        started = time.perf_counter()
        assert client.get("/health/live").status_code == 200
        assert client.get("/health/ready").status_code == 200
        answered_in = time.perf_counter() - started
    assert computing.result(WAIT).status_code == 200
    assert answered_in < 2


STALLED_HEAD = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n\x89PNG'


def test_an_upload_in_flight_takes_no_slot(model_dir):
    # Regression: a slot taken on arrival let slow uploads hold every slot; the body comes first.
    settings = Settings(
        model_dir=model_dir, max_concurrency=1, compute_in_event_loop=True, max_queue=0, retry_after_s=3
    )
    app = create_app(settings)
    uploading = asyncio.Event()
    answered: list[dict] = []

    async def stalled_receive():
        if not uploading.is_set():
            uploading.set()
            return {"type": "http.request", "body": STALLED_HEAD, "more_body": True}
        await asyncio.Event().wait()  # the client stalls mid-upload
        raise AssertionError("unreachable")

    async def empty_receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def ignore(message):
        pass

    async def collect(message):
        answered.append(message)

    async def both():
        first = asyncio.create_task(app(predict_scope(), stalled_receive, ignore))
        await uploading.wait()
        await app(predict_scope(), empty_receive, collect)  # admitted: an empty form is a 422
        assert find_admission(app).body_bytes == len(STALLED_HEAD)  # the stalled one's bytes count
        first.cancel()

    asyncio.run(asyncio.wait_for(both(), WAIT))
    assert answered[0]["status"] == 422, answered


def test_bodies_held_past_the_byte_budget_are_refused_at_once():
    received: list[bytes] = []

    async def app(scope, receive, send):
        while (message := await receive())["more_body"]:
            received.append(message["body"])
        received.append(message["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    admission = AdmissionMiddleware(app, max_in_flight=5, retry_after_s=2, max_body_bytes=10)
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    def body(*chunks: bytes):
        messages = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ]

        async def receive():
            return messages.pop(0)

        return receive

    asyncio.run(admission(predict_scope(), body(b"12345", b"6789"), send))
    assert sent[0]["status"] == 200 and received == [b"12345", b"6789"]  # handed over as it came
    sent.clear()
    asyncio.run(admission(predict_scope(), body(b"123456", b"78901"), send))
    assert sent[0]["status"] == 503 and (b"retry-after", b"2") in sent[0]["headers"]
    assert b"10 bytes of uploads" in sent[1]["body"]
    assert admission.body_bytes == 0 and admission.in_flight == 0


def test_a_stalled_upload_times_out_with_408(model_dir):
    app = create_app(Settings(model_dir=model_dir, request_timeout_s=0.2))
    sent, calls = [], []

    async def receive():
        calls.append(1)
        if len(calls) == 1:
            return {"type": "http.request", "body": STALLED_HEAD, "more_body": True}
        await asyncio.Event().wait()  # the client stalls mid-upload
        raise AssertionError("unreachable")

    async def send(message):
        sent.append(message)

    scope = predict_scope()
    started = time.perf_counter()
    asyncio.run(asyncio.wait_for(app(scope, receive, send), WAIT))
    assert time.perf_counter() - started < 2
    assert sent[0]["status"] == 408 and b"request_timeout" in sent[1]["body"]


def test_a_body_slower_than_the_minimum_rate_gets_408_and_leaves(model_dir):
    # Regression: 60 clients sending a byte every 2 s held every admission slot until the deadline.
    settings = Settings(model_dir=model_dir, max_queue=0, body_min_bytes_per_s=1000, body_rate_grace_s=0.3)
    app = create_app(settings)
    sent: list[dict] = []

    chunks = [STALLED_HEAD]  # the file part's headers, then its content a byte at a time

    async def trickle():
        await asyncio.sleep(0.05)
        return {"type": "http.request", "body": chunks.pop() if chunks else b"x", "more_body": True}

    async def send(message):
        sent.append(message)

    started = time.perf_counter()
    asyncio.run(asyncio.wait_for(app(predict_scope(), trickle, send), WAIT))
    # Far within the 30 s deadline: the grace, then as long as the bytes sent pay for.
    assert time.perf_counter() - started < 2
    assert sent[0]["status"] == 408
    error = json.loads(sent[1]["body"])["error"]
    assert error["code"] == "request_timeout" and "bytes/s" in error["message"]
    admission = find_admission(app)
    assert admission.in_flight == 0 and admission.body_bytes == 0  # nothing left held


def find_admission(app) -> AdmissionMiddleware:
    layer = app.middleware_stack
    while not isinstance(layer, AdmissionMiddleware):
        layer = layer.app
    return layer


def test_a_body_at_the_minimum_rate_is_read(model_dir, letter_png):
    body = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    body += letter_png + b"\r\n--x--\r\n"
    pieces = [body[i : i + 200] for i in range(0, len(body), 200)]
    app = create_app(Settings(model_dir=model_dir, body_min_bytes_per_s=1000, body_rate_grace_s=0.3))
    sent: list[dict] = []

    async def steady():  # 200 bytes every 0.1 s: twice the minimum rate
        await asyncio.sleep(0.1)
        piece = pieces.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    async def send(message):
        sent.append(message)

    async def served():
        async with app.router.lifespan_context(app):
            await app(predict_scope(), steady, send)

    asyncio.run(asyncio.wait_for(served(), WAIT))
    assert sent[0]["status"] == 200, sent


@pytest.mark.parametrize(
    "bad",
    [
        {"max_concurrency": 0},
        {"max_queue": -1},
        {"retry_after_s": 0},
        {"request_timeout_s": 0},
        {"body_min_bytes_per_s": -1},
        {"body_rate_grace_s": -1},
        {"max_header_bytes": 100},
        {"header_timeout_s": 0},
        {"keep_alive_timeout_s": 0},
    ],
)
def test_invalid_limits_fail_at_start(bad):
    with pytest.raises(ValueError):
        Settings(**bad)
