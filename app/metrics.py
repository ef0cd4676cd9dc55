"""Prometheus metrics, one `CollectorRegistry` per app (tests build many apps in one process).

With several worker processes (HWR_WORKERS) every process writes its values to files in
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode) and /metrics, whichever worker
answers it, adds up all of them.

Labels stay low-cardinality: `task` is a loaded task or "unknown" (never the raw path segment),
`status` is the HTTP status code, `endpoint` one of app.http.routes.ENDPOINTS (counted by
app.http.metrics).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from app.runtime.batching import BatchObserver

STAGES = ("decode", "preprocess", "queue", "inference", "total")
# Seconds; a 28x28 model answers in about a millisecond, a large photo decodes in a few hundred.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# A whole request also waits for admission and a compute slot, and a /read or a batch does many
# images' work: up to the request timeout.
_REQUEST_BUCKETS = (*_BUCKETS, 10.0, 30.0)
_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


class NoMetricsDirectory(RuntimeError):
    """No writable temporary directory for the workers' metrics files."""


@contextmanager
def metrics_shared_between_processes() -> Iterator[str]:
    """Point prometheus_client's multiprocess mode at a fresh directory (or the one already set)
    for the worker processes started inside, which inherit it; a fresh one is removed after."""
    if given := os.environ.get(MULTIPROC_DIR):
        yield given
        return
    try:
        workspace = tempfile.TemporaryDirectory(prefix="hwr-metrics-")
    except OSError as exc:  # e.g. a read-only root filesystem without a tmpfs on /tmp
        raise NoMetricsDirectory(f"the workers' metrics need a writable temporary directory: {exc}") from exc
    with workspace as directory:
        os.environ[MULTIPROC_DIR] = directory
        try:
            yield directory
        finally:
            del os.environ[MULTIPROC_DIR]


def forget_process(pid: int) -> None:
    """An ended worker's live gauges leave the sum (its counters and histograms stay)."""
    if os.environ.get(MULTIPROC_DIR):
        multiprocess.mark_process_dead(pid)


def forget_this_process() -> None:
    forget_process(os.getpid())


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # `/predict/*` only, as the dashboards expect; every model endpoint is in `endpoint_requests`.
        self.requests = Counter(
            "hwr_requests", "Prediction requests (/predict/*) by task and HTTP status.", ["task", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.endpoint_requests = Counter(
            "hwr_endpoint_requests", "Model requests (predict, predict_batch, read, v2_infer) by endpoint, "
            "task and HTTP status.", ["endpoint", "task", "status"], registry=self.registry,
        )  # fmt: skip
        self.request_seconds = Histogram(
            "hwr_request_duration_seconds", "Model requests from arrival to the last byte answered: "
            "waiting for admission and a compute slot included, unlike hwr_stage_seconds. `code`: the "
            "status class (2xx, 4xx, 5xx); `version`: the answering model's version.",
            ["endpoint", "task", "version", "code"], buckets=_REQUEST_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.in_flight = Gauge(
            "hwr_requests_in_flight", "Model requests received and not yet answered (queued ones included).",
            ["endpoint"], registry=self.registry, multiprocess_mode="livesum",
        )  # fmt: skip
        self.model_info = Gauge(
            "hwr_model_info", "1 for every model a serving process has loaded: its task, name and version.",
            ["task", "name", "version"], registry=self.registry, multiprocess_mode="livemax",
        )  # fmt: skip
        self.stage_seconds = Histogram(
            "hwr_stage_seconds", "Time spent per prediction stage.", ["task", "stage"],
            buckets=_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.batch_size = Histogram(
            "hwr_batch_size", "Rows per model call of the dynamic batcher.", ["task"],
            buckets=_BATCH_SIZES, registry=self.registry,
        )  # fmt: skip
        self.batch_queue_seconds = Histogram(
            "hwr_batch_queue_seconds", "Time a request's input waited for its batch's model call.", ["task"],
            buckets=_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.batch_queue_depth = Gauge(
            "hwr_batch_queue_depth", "Inputs waiting for the dynamic batcher's next model call.", ["task"],
            registry=self.registry, multiprocess_mode="livesum",
        )  # fmt: skip
        self.workers_serving = Gauge(
            "hwr_workers_serving", "Serving processes whose models are loaded.",
            registry=self.registry, multiprocess_mode="livesum",
        )  # fmt: skip

    def loaded(self, models: Iterable[tuple[str, str, str]]) -> None:
        """Record the loaded models: (task, name, version) each."""
        for task, name, version in models:
            self.model_info.labels(task=task, name=name, version=version).set(1)

    def batch_observer(self, task: str) -> BatchObserver:
        return _BatchMetrics(self, task)

    def observe_stages(self, task: str, seconds: dict[str, float]) -> None:
        for stage in STAGES:
            if stage in seconds:
                self.stage_seconds.labels(task=task, stage=stage).observe(seconds[stage])

    def serving_processes(self) -> int | None:
        """With several workers, how many have loaded their models (the live sum of their
        `hwr_workers_serving`); None in a single process, where its own registry says it all."""
        if not os.environ.get(MULTIPROC_DIR):
            return None
        return int(
            sum(
                sample.value
                for family in multiprocess.MultiProcessCollector(None).collect()
                if family.name == "hwr_workers_serving"
                for sample in family.samples
            )
        )

    def render(self) -> bytes:
        if os.environ.get(MULTIPROC_DIR):
            every_process = CollectorRegistry()
            multiprocess.MultiProcessCollector(every_process)
            return generate_latest(every_process)
        return generate_latest(self.registry)


class _BatchMetrics(BatchObserver):
    def __init__(self, metrics: Metrics, task: str) -> None:
        self.size = metrics.batch_size.labels(task=task)
        self.queue_seconds = metrics.batch_queue_seconds.labels(task=task)
        self.queue_depth = metrics.batch_queue_depth.labels(task=task)

    def batch(self, size: int, queue_seconds: list[float]) -> None:
        self.size.observe(size)
        for seconds in queue_seconds:
            self.queue_seconds.observe(seconds)

    def depth(self, waiting: int) -> None:
        self.queue_depth.set(waiting)
