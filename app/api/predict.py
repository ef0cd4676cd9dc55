"""`POST /predict/{task}`: upload → decode → preprocess → ONNX → top-k, timed per stage."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Annotated, BinaryIO

import numpy as np
from fastapi import APIRouter, File, Path, Query, Request, UploadFile

from app.api.deps import BatchersDep, ComputeDep, MetricsDep, RegistryDep, SettingsDep, error_responses
from app.config import Settings
from app.errors import InvalidParameter, NoInk, ServiceError
from app.http.uploads import IMAGE_BODY, IMAGE_FIELD, uploaded_file
from app.metrics import Metrics
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
from app.service.images import check_decode_budget, decode_image, read_capped
from app.service.preview import preview_of
from contract.manifest import Head, Manifest
from contract.postprocessing import compose_top_k, head_probabilities, rank_heads, top_k_indexed
from contract.preprocessing import NoInkError, preprocess

router = APIRouter(tags=["predict"])
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


@router.post(
    "/predict/{task}",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 404, 408, 413, 415, 422, 503),
    summary="Classify one handwritten character",
    # The form field `file`, read by app/http/uploads.py rather than an `UploadFile` parameter.
    openapi_extra=IMAGE_BODY,
)
async def predict(
    task: Annotated[str, Path(description="The model's task, e.g. `letter` (see `GET /models`).")],
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    compute: ComputeDep,
    batchers: BatchersDep,
    k: Annotated[
        int | None,
        Query(ge=1, description="How many labels to return (default from settings; at most max_k)."),
    ] = None,
    preview: Annotated[
        bool,
        Query(description="Also return `preview`: the image the model received, as a base64 PNG."),
    ] = False,
) -> PredictResponse:
    async with uploaded_file(request, IMAGE_FIELD, settings.upload_memory_bytes) as file:
        model = registry.get(task)
        k = resolve_k(k, settings, model.manifest)
        batcher = batchers.get(task)
        if batcher is None:
            # At most `max_concurrency` predictions at once. Waiting for a turn blocks no thread and
            # ends at the request deadline; once the turn comes, the work is finished and answered.
            return await compute.run(partial(run_prediction, model, file, settings, metrics, k, preview))
        # Dynamic batching: the input is prepared under the same limit, then the worker is freed
        # while the input waits for a shared model call.
        stopwatch = Stopwatch()
        with batcher.preparing():
            x = await compute.run(partial(prepare, file, model.manifest, settings, stopwatch))
    result = await batcher.infer(x)
    stopwatch.seconds["queue"] = result.queue_seconds
    stopwatch.seconds["inference"] = result.inference_seconds
    response = answer(model, result.logits, k, stopwatch.finish(), metrics)
    if preview:
        response.preview = preview_of(x, model.manifest.preprocessing)
    return response


@router.post(
    "/predict/{task}/batch",
    response_model=BatchResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 404, 408, 413, 422, 503),
    summary="Classify several images in one request",
)
async def predict_batch(
    task: Annotated[str, Path(description="The model's task, e.g. `letter` (see `GET /models`).")],
    files: Annotated[
        list[UploadFile], File(description="The images, one form part each (repeat the field `files`).")
    ],
    registry: RegistryDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    compute: ComputeDep,
    k: Annotated[int | None, Query(ge=1, description="How many labels per file (as for one file).")] = None,
) -> BatchResponse:
    """One result or one error per file, in upload order; the usable files share one model call.
    A file's error (e.g. `no_ink`) never fails the others; the request fails only as a whole
    (unknown task, too many files, over the byte cap or the decode budget)."""
    model = registry.get(task)
    k = resolve_k(k, settings, model.manifest)
    if len(files) > settings.max_batch_files:
        raise InvalidParameter(f"at most {settings.max_batch_files} files per batch, got {len(files)}")
    uploads = [(f.filename, f.file) for f in files]
    return await compute.run(partial(run_batch, model, uploads, settings, metrics, k))


def decode_side(manifest: Manifest, settings: Settings) -> int | None:
    """How small a JPEG may decode (its longer side): the setting, or the model's `max_side` if less."""
    if settings.jpeg_decode_min_side == 0:
        return None
    return min(settings.jpeg_decode_min_side, manifest.preprocessing.max_side)


def prepare(upload: BinaryIO, manifest: Manifest, settings: Settings, stopwatch: Stopwatch) -> np.ndarray:
    """Blocking: the uploaded file → the model's input (1×S×S), decode and preprocess timed."""
    return prepare_bytes(read_capped(upload, settings.max_upload_bytes), manifest, settings, stopwatch)


def prepare_bytes(data: bytes, manifest: Manifest, settings: Settings, stopwatch: Stopwatch) -> np.ndarray:
    """Blocking: an image file's bytes → the model's input (1×S×S), decode and preprocess timed."""
    with stopwatch.stage("decode"):
        image = decode_image(
            data,
            max_pixels=settings.max_pixels,
            max_side=settings.max_side,
            reduce_to=decode_side(manifest, settings),
        )
    with stopwatch.stage("preprocess"):
        try:
            # The model's own recorded parameters: exactly what it was trained on.
            return preprocess(image, manifest.preprocessing)
        except NoInkError as exc:
            raise NoInk(str(exc)) from exc


def run_prediction(
    model: LoadedModel, upload: BinaryIO, settings: Settings, metrics: Metrics, k: int, preview: bool = False
) -> PredictResponse:
    """Blocking: the uploaded file → the response, timed per stage (with what the model saw, if asked)."""
    stopwatch = Stopwatch()
    x = prepare(upload, model.manifest, settings, stopwatch)
    with stopwatch.stage("inference"):
        logits = model.classifier.predict(x[None])
    response = answer(model, logits, k, stopwatch.finish(), metrics)
    if preview:
        response.preview = preview_of(x, model.manifest.preprocessing)
    return response


def run_batch(
    model: LoadedModel,
    uploads: list[tuple[str | None, BinaryIO]],
    settings: Settings,
    metrics: Metrics,
    k: int,
) -> BatchResponse:
    """Blocking: each file prepared on its own (its error kept), then one model call for all.
    The files' decode cost is checked against the request's budget first, from their headers."""
    items = [BatchItem(filename=name) for name, _ in uploads]
    files: dict[int, bytes] = {}
    for i, (_, upload) in enumerate(uploads):
        try:
            files[i] = read_capped(upload, settings.max_upload_bytes)
        except ServiceError as exc:
            items[i].error = BatchError(code=exc.code, message=exc.message, status=exc.status_code)
    budget = settings.max_decode_cost
    check_decode_budget(list(files.values()), budget, settings.max_pixels, settings.max_side)
    prepared: list[tuple[int, np.ndarray, Stopwatch]] = []
    for i, data in files.items():
        stopwatch = Stopwatch()
        try:
            prepared.append((i, prepare_bytes(data, model.manifest, settings, stopwatch), stopwatch))
        except ServiceError as exc:
            items[i].error = BatchError(code=exc.code, message=exc.message, status=exc.status_code)
        except Exception as exc:
            # A bug, not a bad file: logged in full, and this file alone answered as the last-resort
            # handler would answer it, so one file can never fail the others.
            log.error("unhandled error preparing batch file %d", i, exc_info=exc)
            items[i].error = BatchError(code="internal_error", message="internal server error", status=500)
    if prepared:
        started = time.perf_counter()
        logits = model.classifier.predict(np.stack([x for _, x, _ in prepared]))
        inference = time.perf_counter() - started  # shared: each file reports the batch's call
        for row, (i, _, stopwatch) in enumerate(prepared):
            stopwatch.seconds["inference"] = inference
            own = {head: value[row : row + 1] for head, value in logits.items()}
            items[i].result = answer(model, own, k, stopwatch.finish(), metrics)
    return BatchResponse(task=model.manifest.task, results=items)


def answer(
    model: LoadedModel, logits: dict[str, np.ndarray], k: int, seconds: dict[str, float], metrics: Metrics
) -> PredictResponse:
    """One image's logits (1×labels per head) → its response; the manifest alone decides how."""
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
