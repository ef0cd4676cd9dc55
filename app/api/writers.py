"""Writer identification: `/writers` (enrol, add samples, list, delete) and `POST /identify/writer`.

The embedding model (HWR_WRITER_MODEL_DIR) and the database (HWR_WRITER_DB) are opened on first use,
so the rest of the service starts and serves without them; until a model is installed these
endpoints answer 503 `model_not_ready`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, BinaryIO, TypeVar

import numpy as np
from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile

from app.api.deps import ComputeDep, SettingsDep, error_responses
from app.config import Settings
from app.errors import InvalidParameter, ModelNotReady, NoInk, ServiceError
from app.runtime.compute import Compute
from app.runtime.embedder import WriterEmbedder, WriterModelError, load_embedder, mean_embedding
from app.runtime.writer_store import StoreUnavailable, TooManySamples, TooManyWriters, Writer, WriterStore
from app.schemas.predict import ErrorResponse, ModelRef
from app.schemas.writers import Candidate, IdentifyResponse, WriterList, WriterOut
from app.service.images import check_decode_budget, decode_image, read_capped
from app.service.writer_images import STORED_MAX_SIDE, storable_png
from app.service.writer_matching import rank_writers
from contract.preprocessing import NoInkError, preprocess

router = APIRouter(tags=["writers"])

MAX_NAME_LENGTH = 200
FILES_DESCRIPTION = "Images of single handwritten characters by one writer (repeat the field `files`)."


class UnknownWriter(ServiceError):
    status_code = 404
    code = "unknown_writer"


class WriterStoreUnavailable(ServiceError):
    status_code = 503
    code = "writer_store_unavailable"


class WriterStoreFull(ServiceError):
    """HWR_WRITER_MAX_WRITERS reached: a state the client can change (delete a writer), hence 409."""

    status_code = 409
    code = "writer_store_full"


@dataclass(frozen=True)
class WriterService:
    embedder: WriterEmbedder
    store: WriterStore
    fixed_threshold: float | None  # HWR_WRITER_THRESHOLD; else the manifest's, per query size

    @property
    def version(self) -> str:
        return self.embedder.manifest.version

    def threshold(self, characters: int) -> float:
        if self.fixed_threshold is not None:
            return self.fixed_threshold
        return self.embedder.manifest.threshold_for(characters)


_load_lock = threading.Lock()


def open_service(request: Request) -> WriterService:
    """Blocking: the app's writer service, built once (a failed attempt is retried next request)."""
    state = request.app.state
    with _load_lock:
        service: WriterService | None = getattr(state, "writer_service", None)
        if service is not None:
            return service
        settings: Settings = state.settings
        try:
            embedder = load_embedder(
                settings.writer_model_dir,
                settings.ort_intra_op_threads,
                settings.inference_max_batch,
                settings.ort_cpu_mem_arena,
            )
        except WriterModelError as exc:
            raise ModelNotReady(f"writer identification is not available: {exc}") from exc
        try:
            store = WriterStore(
                settings.writer_db,
                max_writers=settings.writer_max_writers,
                max_samples=settings.writer_max_samples,
            )
        except StoreUnavailable as exc:
            raise WriterStoreUnavailable(str(exc)) from exc
        service = WriterService(embedder, store, settings.writer_threshold)
        state.writer_service = service
        return service


def embed_uploads(
    service: WriterService, uploads: list[BinaryIO], settings: Settings, keep_images: bool = False
) -> tuple[np.ndarray, list[bytes] | None]:
    """Blocking: every file → its embedding (N×dim), and with `keep_images` each image re-encoded
    for the store (never the upload's bytes: app/service/writer_images.py). Any bad file fails the
    request, named by its place, so an enrolment is never built from part of what was sent."""
    manifest = service.embedder.manifest
    files: list[bytes] = []
    for i, upload in enumerate(uploads):
        try:
            files.append(read_capped(upload, settings.max_upload_bytes))
        except ServiceError as exc:
            exc.message = f"files[{i}]: {exc.message}"
            raise
    # From the headers, before any file is decoded.
    check_decode_budget(files, settings.max_decode_cost, settings.max_pixels, settings.max_side)
    inputs: list[np.ndarray] = []
    kept: list[bytes] = []
    for i in range(len(files)):
        try:
            image = decode_image(files[i], max_pixels=settings.max_pixels, max_side=settings.max_side)
            files[i] = b""  # the decoded image is all that is needed from here on
            if keep_images:
                kept.append(storable_png(image))
            try:
                inputs.append(preprocess(image, manifest.preprocessing))
            except NoInkError as exc:
                raise NoInk(str(exc)) from exc
        except ServiceError as exc:
            exc.message = f"files[{i}]: {exc.message}"
            raise
    return service.embedder.embed(np.stack(inputs)), kept if keep_images else None


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


async def run(compute: Compute, work: Callable[[], T]) -> T:
    """Blocking work under the same limit as the predictions, in a thread: it calls the store."""
    try:
        return await compute.run(work, waits_on_io=True)
    except StoreUnavailable as exc:
        raise WriterStoreUnavailable(str(exc)) from exc
    except TooManyWriters as exc:
        raise WriterStoreFull(str(exc)) from exc
    except TooManySamples as exc:
        raise InvalidParameter(str(exc)) from exc


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

    def work() -> Writer:
        service = open_service(request)
        embeddings, images = embed_uploads(service, uploads, settings, keep_images=store_images)
        return service.store.enrol(name, embeddings, service.version, images)

    return out(await run(compute, work))


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

    def work() -> Writer:
        service = open_service(request)
        writer = service.store.get(writer_id)
        if writer is None:
            raise UnknownWriter(f"no writer with id {writer_id}")
        if writer.model_version != service.version:
            raise InvalidParameter(
                f"writer {writer_id} was enrolled with model {writer.model_version!r}, not the serving "
                f"{service.version!r}: delete and enrol again"
            )
        # Early, before any embedding work; the store checks again where it counts (atomically).
        if writer.samples + len(uploads) > settings.writer_max_samples:
            raise InvalidParameter(f"at most {settings.writer_max_samples} samples per writer")
        embeddings, images = embed_uploads(service, uploads, settings, keep_images=store_images)
        updated = service.store.add_samples(writer_id, embeddings, images)
        if updated is None:  # deleted meanwhile
            raise UnknownWriter(f"no writer with id {writer_id}")
        return updated

    return out(await run(compute, work))


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

    def work() -> tuple[list[Writer], int]:
        store = open_service(request).store
        return store.writers(after, limit + 1), store.count()  # one more: is there a next page?

    writers, total = await run(compute, work)
    next_after = writers[limit - 1].id if len(writers) > limit else None
    return WriterList(writers=[out(w) for w in writers[:limit]], total=total, next_after=next_after)


@router.delete(
    "/writers/{writer_id}",
    status_code=204,
    responses=error_responses(401, 404, 503),
    summary="Delete a writer and everything stored about them",
)
async def delete_writer(request: Request, writer_id: WriterId, compute: ComputeDep) -> Response:
    def work() -> bool:
        return open_service(request).store.delete(writer_id)

    if not await run(compute, work):
        raise UnknownWriter(f"no writer with id {writer_id}")
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

    def work() -> IdentifyResponse:
        service = open_service(request)
        embeddings, _ = embed_uploads(service, uploads, settings)
        ids, means = service.store.means(service.version)
        matches = rank_writers(mean_embedding(embeddings), ids, means, k)
        names = service.store.names([m.writer_id for m in matches])
        candidates = [
            Candidate(id=m.writer_id, name=names.get(m.writer_id, ""), score=m.score) for m in matches
        ]
        threshold = service.threshold(len(embeddings))
        known = bool(candidates) and candidates[0].score >= threshold
        manifest = service.embedder.manifest
        return IdentifyResponse(
            model=ModelRef(name=manifest.name, version=manifest.version),
            characters=len(embeddings),
            threshold=threshold,
            unknown=not known,
            writer=candidates[0] if known else None,
            candidates=candidates,
        )

    return await run(compute, work)
