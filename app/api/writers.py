"""Writer identification: `/writers` (enrol, add samples, list, delete) and `POST /identify/writer`.

The embedding model (HWR_WRITER_MODEL_DIR) and the database (HWR_WRITER_DB) load at start-up
(app/runtime/writers.py); the rest of the service serves without them, and until both are there
these endpoints answer 503 saying why. The work is app/service/writers.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, BinaryIO, TypeVar

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile

from app.api.deps import ComputeDep, SettingsDep, error_responses
from app.config import Settings
from app.errors import InvalidParameter
from app.runtime.compute import Compute
from app.runtime.writer_store import Writer
from app.runtime.writers import Writers, WriterService
from app.schemas.predict import ErrorResponse
from app.schemas.writers import IdentifyResponse, WriterList, WriterOut
from app.service import writers as work
from app.service.writer_images import STORED_MAX_SIDE

router = APIRouter(tags=["writers"])

MAX_NAME_LENGTH = 200
FILES_DESCRIPTION = "Images of single handwritten characters by one writer (repeat the field `files`)."


def check_files(files: list[UploadFile], settings: Settings) -> list[BinaryIO]:
    if not files:
        raise InvalidParameter("send at least one image in the field `files`")
    if len(files) > settings.max_batch_files:
        raise InvalidParameter(f"at most {settings.max_batch_files} files per request, got {len(files)}")
    return [f.file for f in files]


def check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise InvalidParameter(f"name must be 1 to {MAX_NAME_LENGTH} characters (not only spaces)")
    return name


def out(writer: Writer) -> WriterOut:
    return WriterOut(**vars(writer))


T = TypeVar("T")


async def run(request: Request, compute: Compute, task: Callable[[WriterService], T]) -> T:
    """Blocking work under the same limit as the predictions, in a thread: it calls the store."""
    writers: Writers = request.app.state.writers
    return await compute.run(lambda: task(writers.get()), waits_on_io=True)


FilesField = Annotated[list[UploadFile], File(description=FILES_DESCRIPTION)]
StoreImages = Annotated[
    bool,
    Query(
        description="Also store the images, re-encoded as PNG with the longer side at most "
        f"{STORED_MAX_SIDE} px "
        "(by default only their embeddings are kept)."
    ),
]
# Ids are 64-bit signed in both stores (SQLite INTEGER, PostgreSQL BIGSERIAL): a larger one would
# overflow the driver (a 500), so the path refuses it as invalid before any work.
MAX_WRITER_ID = 2**63 - 1
DEFAULT_PAGE, MAX_PAGE = 100, 1000  # GET /writers: writers per page
WriterId = Annotated[int, Path(ge=1, le=MAX_WRITER_ID, description="The writer's id (from `POST /writers`).")]


@router.post(
    "/writers",
    status_code=201,
    response_model=WriterOut,
    responses={
        **error_responses(400, 401, 408, 413, 415, 422, 503),
        409: {"model": ErrorResponse, "description": "`writer_store_full`: HWR_WRITER_MAX_WRITERS reached."},
    },
    summary="Enrol a writer from images of their characters",
)
async def enrol_writer(
    request: Request,
    name: Annotated[str, Form(description="A name for the writer (need not be unique).")],
    files: FilesField,
    settings: SettingsDep,
    compute: ComputeDep,
    store_images: StoreImages = False,
) -> WriterOut:
    name = check_name(name)
    uploads = check_files(files, settings)

    return out(await run(request, compute, lambda s: work.enrol(s, name, uploads, settings, store_images)))


@router.post(
    "/writers/{writer_id}/samples",
    response_model=WriterOut,
    responses=error_responses(400, 401, 404, 408, 413, 415, 422, 503),
    summary="Add characters to an enrolled writer",
)
async def add_samples(
    request: Request,
    writer_id: WriterId,
    files: FilesField,
    settings: SettingsDep,
    compute: ComputeDep,
    store_images: StoreImages = False,
) -> WriterOut:
    uploads = check_files(files, settings)

    return out(
        await run(request, compute, lambda s: work.add_samples(s, writer_id, uploads, settings, store_images))
    )


@router.get(
    "/writers",
    response_model=WriterList,
    responses=error_responses(401, 422, 503),
    summary="List the enrolled writers",
)
async def list_writers(
    request: Request,
    compute: ComputeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Writers per page.")] = DEFAULT_PAGE,
    after: Annotated[
        int, Query(ge=0, le=MAX_WRITER_ID, description="Only writers with a larger id: `next_after`.")
    ] = 0,
) -> WriterList:
    """Paged by id: the whole store in one answer would grow without bound."""

    writers, total = await run(request, compute, lambda s: work.page(s, after, limit))
    next_after = writers[limit - 1].id if len(writers) > limit else None
    return WriterList(writers=[out(w) for w in writers[:limit]], total=total, next_after=next_after)


@router.delete(
    "/writers/{writer_id}",
    status_code=204,
    responses=error_responses(401, 404, 503),
    summary="Delete a writer and everything stored about them",
)
async def delete_writer(request: Request, writer_id: WriterId, compute: ComputeDep) -> Response:
    await run(request, compute, lambda s: work.delete(s, writer_id))
    return Response(status_code=204)


@router.post(
    "/identify/writer",
    response_model=IdentifyResponse,
    responses=error_responses(400, 401, 408, 413, 415, 422, 503),
    summary="Tell which enrolled writer wrote these characters",
)
async def identify_writer(
    request: Request,
    files: FilesField,
    settings: SettingsDep,
    compute: ComputeDep,
    k: Annotated[int, Query(ge=1, le=100, description="How many candidates to return.")] = 5,
) -> IdentifyResponse:
    """All the images are taken to be by one writer: their embeddings are averaged (more
    characters, surer answer)."""
    uploads = check_files(files, settings)

    return await run(request, compute, lambda s: work.identify(s, uploads, settings, k))
