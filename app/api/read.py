"""`POST /read/{task}`: a photo of a handwritten word, code or number → its characters and text."""

from __future__ import annotations

from functools import partial
from typing import Annotated, BinaryIO

from fastapi import APIRouter, Path, Query, Request

from app.api.deps import ComputeDep, RegistryDep, SettingsDep, error_responses
from app.api.predict import Stopwatch, resolve_k
from app.config import Settings
from app.errors import NoInk, TooManyCharacters, TooManyPieces
from app.http.uploads import IMAGE_BODY, IMAGE_FIELD, uploaded_file
from app.runtime.registry import LoadedModel
from app.schemas.predict import ModelRef, Prediction
from app.schemas.read import ReadCharacter, ReadResponse, ReadTiming
from app.service.images import decode_image, read_capped
from app.service.reading import (
    MIN_CONFIDENCE,
    candidates,
    characters,
    default_min_confidence,
    ranked_rows,
    text_of,
)
from app.service.segmentation import Blob, TooManyParts, segment
from contract.preprocessing import NoInkError

router = APIRouter(tags=["read"])


@router.post(
    "/read/{task}",
    response_model=ReadResponse,
    responses=error_responses(400, 401, 404, 408, 413, 415, 422, 503),
    summary="Read a handwritten word, code or number (several characters)",
    # The form field `file`, read by app/http/uploads.py as for POST /predict/{task}.
    openapi_extra=IMAGE_BODY,
)
async def read(
    task: Annotated[str, Path(description="The model's task: `letter`, `digit` or `grapheme`.")],
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    compute: ComputeDep,
    k: Annotated[
        int | None,
        Query(ge=1, description="How many labels per character (default from settings; at most max_k)."),
    ] = None,
    min_confidence: Annotated[
        float | None,
        Query(
            ge=0.0,
            le=1.0,
            description="A character whose first answer is less probable than this is rejected: "
            f"`rejected: true` and `?` in `text`. 0 never rejects. Default {MIN_CONFIDENCE:g}, per head "
            f"for answers composed from several heads (Bengali graphemes: {MIN_CONFIDENCE**3:.2f}).",
        ),
    ] = None,
) -> ReadResponse:
    """Segments the image into characters (lines top to bottom, each left to right) and classifies
    each one through the same preprocessing and model as `POST /predict/{task}`, in shared model
    calls. Touching characters, and Bengali graphemes joined by their headline, are cut where the
    model reads the pieces clearly better than the whole."""
    async with uploaded_file(request, IMAGE_FIELD, settings.upload_memory_bytes) as file:
        model = registry.get(task)
        k = resolve_k(k, settings, model.manifest)
        if min_confidence is None:
            min_confidence = default_min_confidence(model.manifest)
        # Under the same worker limit and deadline as predictions: the work starts, then finishes.
        return await compute.run(partial(run_read, model, file, settings, k, min_confidence))


def check_pieces(blobs: list[Blob], most: int) -> None:
    """Refuse an image whose candidate characters exceed `most`, before any is preprocessed."""
    pieces = sum(len(blob.spans) for blob in blobs)
    if pieces > most:
        raise TooManyPieces(
            f"the image gives {pieces} candidate characters (its marks and the pieces of touching ones); "
            f"at most {most} are read per image: send fewer characters per image"
        )


def run_read(
    model: LoadedModel, upload: BinaryIO, settings: Settings, k: int, min_confidence: float
) -> ReadResponse:
    """Blocking: the uploaded file → the response, timed per stage."""
    stopwatch = Stopwatch()
    cfg = model.manifest.preprocessing
    data = read_capped(upload, settings.max_upload_bytes)
    with stopwatch.stage("decode"):
        image = decode_image(data, max_pixels=settings.max_pixels, max_side=settings.max_side)
    try:
        with stopwatch.stage("segment"):
            blobs = segment(image, cfg)
        check_pieces(blobs, settings.read_max_pieces)
        with stopwatch.stage("preprocess"):
            found = candidates(blobs, cfg)
    except NoInkError as exc:
        raise NoInk(str(exc)) from exc
    except TooManyParts as exc:
        raise TooManyCharacters(str(exc)) from exc
    with stopwatch.stage("inference"):
        # In chunks of `inference_max_batch` (the classifier's own limit).
        logits = model.classifier.predict(found.inputs)
    read = characters(blobs, found, ranked_rows(logits, model.manifest, k), min_confidence)
    seconds = stopwatch.finish()
    return ReadResponse(
        task=model.manifest.task,
        model=ModelRef(name=model.manifest.name, version=model.manifest.version),
        text=text_of(read),
        characters=[
            ReadCharacter(
                box=list(c.box),
                line=c.line,
                predictions=[Prediction(label=label, probability=p) for label, p in c.predictions],
                rejected=c.rejected,
            )
            for c in read
        ],
        timing_ms=ReadTiming(**{stage: round(s * 1000, 3) for stage, s in seconds.items()}),
    )
