"""`POST /predict/{task}` and `POST /predict/{task}/batch`: uploads in, top-k labels out
(app/service/pipeline.py does the work)."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, File, Path, Query, Request, UploadFile

from app.api.deps import (
    IMAGE_BODY,
    BatchersDep,
    ComputeDep,
    MetricsDep,
    RegistryDep,
    SettingsDep,
    error_responses,
)
from app.errors import InvalidParameter
from app.http.routes import PREDICT_BATCH_PATH, PREDICT_PATH
from app.http.uploads import IMAGE_FIELD, uploaded_file
from app.schemas.predict import BatchResponse, PredictResponse
from app.service import pipeline

router = APIRouter(tags=["predict"])

TaskPath = Annotated[str, Path(description="The model's task, e.g. `letter` (see `GET /models`).")]


@router.post(
    PREDICT_PATH,
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 404, 408, 413, 415, 422, 503),
    summary="Classify one handwritten character",
    # The form field `file`, read by app/http/uploads.py rather than an `UploadFile` parameter.
    openapi_extra=IMAGE_BODY,
)
async def predict(
    task: TaskPath,
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
        k = pipeline.resolve_k(k, settings, model.manifest)
        return await pipeline.predict(model, file, settings, metrics, compute, batchers.get(task), k, preview)


@router.post(
    PREDICT_BATCH_PATH,
    response_model=BatchResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 404, 408, 413, 422, 503),
    summary="Classify several images in one request",
)
async def predict_batch(
    task: TaskPath,
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
    k = pipeline.resolve_k(k, settings, model.manifest)
    if len(files) > settings.max_batch_files:
        raise InvalidParameter(f"at most {settings.max_batch_files} files per batch, got {len(files)}")
    uploads = [(f.filename, f.file) for f in files]
    return await compute.run(partial(pipeline.predict_files, model, uploads, settings, metrics, k))
