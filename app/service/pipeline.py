"""One image's way through a model, shared by every endpoint: prepare → infer → answer, each stage
timed by a `Stopwatch`.

- prepare: the upload's bytes decoded and checked (`images.decode_upload`, reduced-size JPEG
  decoding included) and preprocessed with the model's own recorded parameters; a blank image
  is `NoInk` (`ink_required`, the one place that mapping is made).
- infer: one model call for every prepared input of the request (or the dynamic batcher's).
- answer: logits → the response, as the manifest says (ranked heads or composed answers).

`prepare_all` is the same for the files of one request (predict batch, writer enrolment and
identification, v2 `image_bytes`): each read within the byte cap, all checked against the
decode budget from their headers, then each prepared; a file's error is its own.
Framework-free: blocking functions run under `app.runtime.compute`, the caller's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO

import numpy as np

from app.config import Settings
from app.errors import InternalError, InvalidParameter, NoInk, ServiceError
from app.metrics import Metrics
from app.runtime.batching import DynamicBatcher
from app.runtime.compute import Compute
from app.runtime.registry import LoadedModel
from app.schemas.predict import (
    BatchError,
    BatchItem,
    BatchResponse,
    ComponentPrediction,
    ModelRef,
    Prediction,
    PredictResponse,
    Timing,
)
from app.service.images import check_decode_budget, decode_upload, read_capped
from app.service.preview import preview_of
from contract.manifest import Head, Manifest
from contract.postprocessing import compose_top_k, head_probabilities, rank_heads, top_k_indexed
from contract.preprocessing import NoInkError, PreprocessConfig, preprocess

log = logging.getLogger(__name__)


class Stopwatch:
    """Seconds per named stage, plus `total` since construction."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        begin = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - begin

    def finish(self) -> dict[str, float]:
        return {**self.seconds, "total": time.perf_counter() - self.start}


def resolve_k(k: int | None, settings: Settings, manifest: Manifest) -> int:
    """The requested k, or the default; at most max_k and the first head's label count."""
    limit = min(settings.max_k, len(manifest.heads[0].labels))
    if k is None:
        return min(settings.default_k, limit)
    if not 1 <= k <= limit:
        raise InvalidParameter(f"k must be between 1 and {limit} for task {manifest.task!r}, got {k}")
    return k


@contextmanager
def ink_required() -> Iterator[None]:
    """Preprocessing or segmentation that finds no ink answers `NoInk` (422 `no_ink`)."""
    try:
        yield
    except NoInkError as exc:
        raise NoInk(str(exc)) from exc


def decode_side(cfg: PreprocessConfig, settings: Settings) -> int | None:
    """How small a JPEG may decode (its longer side): the setting, or the model's `max_side` if less."""
    if settings.jpeg_decode_min_side == 0:
        return None
    return min(settings.jpeg_decode_min_side, cfg.max_side)


def prepare(
    data: bytes,
    cfg: PreprocessConfig,
    settings: Settings,
    stopwatch: Stopwatch,
    on_decoded: Callable[[np.ndarray], None] | None = None,
) -> np.ndarray:
    """Blocking: one image file's bytes → the model's input (1×S×S), decode and preprocess timed.
    `on_decoded` sees the decoded pixels first (the writer store keeps a bounded copy)."""
    with stopwatch.stage("decode"):
        image = decode_upload(data, settings, reduce_to=decode_side(cfg, settings))
    if on_decoded is not None:
        on_decoded(image)
    with stopwatch.stage("preprocess"), ink_required():
        # The model's own recorded parameters: exactly what it was trained on.
        return preprocess(image, cfg)


@dataclass
class Prepared:
    x: np.ndarray  # 1×S×S
    stopwatch: Stopwatch


Outcome = Prepared | ServiceError


def read_all(uploads: Sequence[BinaryIO], settings: Settings) -> list[bytes | ServiceError]:
    """Blocking: each file's bytes, or its own PayloadTooLarge past the byte cap."""
    files: list[bytes | ServiceError] = []
    for upload in uploads:
        try:
            files.append(read_capped(upload, settings.max_upload_bytes))
        except ServiceError as exc:
            files.append(exc)
    return files


def prepare_all(
    files: list[bytes | ServiceError],
    cfg: PreprocessConfig,
    settings: Settings,
    on_decoded: Callable[[int, np.ndarray], None] | None = None,
) -> list[Outcome]:
    """Blocking: the files of one request, each prepared on its own (its error kept, a bug as
    `InternalError` so one file never fails the others). The request as a whole is refused
    first, from the headers alone, when the files would decode past the budget."""
    readable = [data for data in files if isinstance(data, bytes)]
    check_decode_budget(readable, settings.max_decode_cost, settings.max_pixels, settings.max_side)
    outcomes: list[Outcome] = []
    for i, data in enumerate(files):
        if isinstance(data, ServiceError):
            outcomes.append(data)
            continue
        files[i] = b""  # from here on the decoded image is all that is needed of it
        stopwatch = Stopwatch()
        seen = None if on_decoded is None else partial(on_decoded, i)
        try:
            outcomes.append(Prepared(prepare(data, cfg, settings, stopwatch, seen), stopwatch))
        except ServiceError as exc:
            outcomes.append(exc)
        except Exception as exc:
            log.error("unhandled error preparing file %d of a request", i, exc_info=exc)
            internal = InternalError("internal server error")
            internal.__cause__ = exc
            outcomes.append(internal)
    return outcomes


def first_failure(outcomes: Sequence[object], name: str) -> None:
    """Raise the first file's error, saying which file it was (`name[i]: ...`), if any failed."""
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, InternalError) and outcome.__cause__ is not None:
            raise outcome.__cause__  # a bug: the last-resort handler answers it
        if isinstance(outcome, ServiceError):
            outcome.message = f"{name}[{i}]: {outcome.message}"
            raise outcome


def every_input(
    uploads: Sequence[BinaryIO],
    cfg: PreprocessConfig,
    settings: Settings,
    name: str,
    on_decoded: Callable[[int, np.ndarray], None] | None = None,
) -> np.ndarray:
    """Blocking: the files of one request → their inputs (N×1×S×S), all or none: the first bad
    file fails the request, named by its place, so nothing is built from part of what was sent."""
    files = read_all(uploads, settings)
    first_failure(files, name)
    outcomes = prepare_all(files, cfg, settings, on_decoded)
    first_failure(outcomes, name)
    return np.stack([outcome.x for outcome in outcomes if isinstance(outcome, Prepared)])


def prepare_upload(
    upload: BinaryIO, cfg: PreprocessConfig, settings: Settings, stopwatch: Stopwatch
) -> np.ndarray:
    """Blocking: the uploaded file, read within the byte cap, → the model's input (`prepare`)."""
    return prepare(read_capped(upload, settings.max_upload_bytes), cfg, settings, stopwatch)


def predict_upload(
    model: LoadedModel, upload: BinaryIO, settings: Settings, metrics: Metrics, k: int, preview: bool = False
) -> PredictResponse:
    """Blocking: the uploaded file → the response, timed per stage (with what the model saw, if asked)."""
    stopwatch = Stopwatch()
    x = prepare_upload(upload, model.manifest.preprocessing, settings, stopwatch)
    with stopwatch.stage("inference"):
        logits = model.classifier.predict(x[None])
    return answer(model, logits, k, stopwatch.finish(), metrics, x if preview else None)


async def predict(
    model: LoadedModel,
    upload: BinaryIO,
    settings: Settings,
    metrics: Metrics,
    compute: Compute,
    batcher: DynamicBatcher | None,
    k: int,
    preview: bool = False,
) -> PredictResponse:
    """One upload → its response, at most `max_concurrency` at once (waiting for a turn blocks no
    thread and ends at the request deadline; once begun, the work is finished and answered)."""
    if batcher is None:
        return await compute.run(partial(predict_upload, model, upload, settings, metrics, k, preview))
    # Dynamic batching: the input is prepared under the same limit, then the worker is freed
    # while the input waits for a shared model call.
    stopwatch = Stopwatch()
    cfg = model.manifest.preprocessing
    with batcher.preparing():
        x = await compute.run(partial(prepare_upload, upload, cfg, settings, stopwatch))
    result = await batcher.infer(x)
    stopwatch.seconds["queue"] = result.queue_seconds
    stopwatch.seconds["inference"] = result.inference_seconds
    return answer(model, result.logits, k, stopwatch.finish(), metrics, x if preview else None)


def predict_files(
    model: LoadedModel,
    uploads: list[tuple[str | None, BinaryIO]],
    settings: Settings,
    metrics: Metrics,
    k: int,
) -> BatchResponse:
    """Blocking: each file prepared on its own (its error kept), then one model call for all."""
    items = [BatchItem(filename=name) for name, _ in uploads]
    files = read_all([upload for _, upload in uploads], settings)
    outcomes = prepare_all(files, model.manifest.preprocessing, settings)
    prepared = [(i, outcome) for i, outcome in enumerate(outcomes) if isinstance(outcome, Prepared)]
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, ServiceError):
            items[i].error = BatchError(
                code=outcome.code, message=outcome.message, status=outcome.status_code
            )
    if prepared:
        started = time.perf_counter()
        logits = model.classifier.predict(np.stack([p.x for _, p in prepared]))
        inference = time.perf_counter() - started  # shared: each file reports the batch's call
        for row, (i, p) in enumerate(prepared):
            p.stopwatch.seconds["inference"] = inference
            own = {head: value[row : row + 1] for head, value in logits.items()}
            items[i].result = answer(model, own, k, p.stopwatch.finish(), metrics)
    return BatchResponse(task=model.manifest.task, results=items)


def answer(
    model: LoadedModel,
    logits: dict[str, np.ndarray],
    k: int,
    seconds: dict[str, float],
    metrics: Metrics,
    shown: np.ndarray | None = None,
) -> PredictResponse:
    """One image's logits (1×labels per head) → its response; the manifest alone decides how.
    `shown`: the model's input, returned as `preview`."""
    manifest = model.manifest
    if manifest.composition is None:
        predictions, heads = ranked(logits, manifest.heads, k)
        components = None
    else:
        predictions, components = composed(logits, manifest.heads, manifest.composition, k)
        heads = None
    metrics.observe_stages(manifest.task, seconds)
    return PredictResponse(
        task=manifest.task,
        model=ModelRef(name=manifest.name, version=manifest.version),
        predictions=predictions,
        heads=heads,
        components=components,
        timing_ms=Timing(**{stage: round(s * 1000, 3) for stage, s in seconds.items()}),
        preview=None if shown is None else preview_of(shown, manifest.preprocessing),
    )


def ranked(
    logits: dict[str, np.ndarray], heads: list[Head], k: int
) -> tuple[list[Prediction], dict[str, list[Prediction]] | None]:
    """The first head's top-k, and every head's top-k when there are several heads."""
    per_head = {
        head: [Prediction(label=label, probability=p) for label, p in top]
        for head, top in rank_heads(logits, heads, k).items()
    }
    return per_head[heads[0].name], per_head if len(heads) > 1 else None


def composed(
    logits: dict[str, np.ndarray], heads: list[Head], composition: str, k: int
) -> tuple[list[Prediction], dict[str, list[ComponentPrediction]]]:
    """Whole answers composed from all heads (the manifest's `composition`), and each head's top-k."""
    probabilities = head_probabilities(logits, heads)
    answers = compose_top_k(composition, probabilities, heads, k)
    components = {
        head.name: [
            ComponentPrediction(index=i, label=label, probability=p)
            for i, label, p in top_k_indexed(probabilities[head.name], head.labels, min(k, len(head.labels)))
        ]
        for head in heads
    }
    return [Prediction(label=label, probability=p) for label, p in answers], components
