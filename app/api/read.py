"""`POST /read/{task}`: a photo of a handwritten word, code or number → its characters and text."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from app.api.deps import IMAGE_BODY, ComputeDep, RegistryDep, SettingsDep, error_responses, with_text_field
from app.http.routes import READ_PATH
from app.http.uploads import IMAGE_FIELD, uploaded_form
from app.schemas.read import ReadResponse
from app.service.lexicon import lexicon_source
from app.service.pipeline import resolve_k
from app.service.reading import MIN_CONFIDENCE, default_min_confidence, read_upload

router = APIRouter(tags=["read"])
WORDS_FIELD = "words"


@router.post(
    READ_PATH,
    response_model=ReadResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 404, 408, 413, 415, 422, 503),
    summary="Read a handwritten word, code or number (several characters)",
    # The form field `file`, read by app/http/uploads.py as for POST /predict/{task}.
    openapi_extra=with_text_field(
        IMAGE_BODY,
        WORDS_FIELD,
        "Optional: your own lexicon, words separated by white space or commas (at most "
        "HWR_READ_MAX_LEXICON_WORDS): every written word is also read as the one of them that explains "
        "its ink best.",
    ),
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
    lexicon: Annotated[
        Literal["english", "words"] | None,
        Query(
            description="Also read every written word as the word of a lexicon that explains its ink "
            "best (`lexicon` in the answer, beside the free reading): `english`, the built-in English "
            "words (letters model), or `words`, the request's own list in the form field `words` "
            "(sending that field alone implies it)."
        ),
    ] = None,
) -> ReadResponse:
    """Segments the image into characters (lines top to bottom, each left to right) and classifies
    each one through the same preprocessing and model as `POST /predict/{task}`, in shared model
    calls. Touching characters, and Bengali graphemes joined by their headline, are cut where the
    model reads the pieces clearly better than the whole."""
    form = uploaded_form(request, IMAGE_FIELD, settings.upload_memory_bytes, (WORDS_FIELD,))
    async with form as (file, fields):
        model = registry.get(task)
        k = resolve_k(k, settings, model.manifest)
        if min_confidence is None:
            min_confidence = default_min_confidence(model.manifest)
        # Under the same worker limit and deadline as predictions: the work starts, then finishes.
        source = lexicon_source(lexicon, fields.get(WORDS_FIELD), settings.read_max_lexicon_words)
        return await compute.run(partial(read_upload, model, file, settings, k, min_confidence, source))
