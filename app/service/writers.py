"""Writer identification's work, free of HTTP: uploads embedded through the same pipeline as a
prediction (`pipeline.every_input`, with the writer model's own preprocessing), enrolments kept
in the store, a query's mean embedding matched against every writer's. Each function is
blocking (it calls the store): run it under `app.runtime.compute` with `waits_on_io`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import BinaryIO, ParamSpec, TypeVar

import numpy as np

from app.config import Settings
from app.errors import InvalidParameter, UnknownWriter, WriterStoreFull, WriterStoreUnavailable
from app.runtime.embedder import mean_embedding
from app.runtime.writer_store import StoreUnavailable, TooManySamples, TooManyWriters, Writer
from app.runtime.writers import WriterService
from app.schemas.predict import ModelRef
from app.schemas.writers import Candidate, IdentifyResponse
from app.service.pipeline import every_input
from app.service.writer_images import storable_png
from app.service.writer_matching import rank_writers

P = ParamSpec("P")
T = TypeVar("T")


@contextmanager
def store_errors() -> Iterator[None]:
    """The store's own exceptions as the domain errors a client is answered with."""
    try:
        yield
    except StoreUnavailable as exc:
        raise WriterStoreUnavailable(str(exc)) from exc
    except TooManyWriters as exc:
        raise WriterStoreFull(str(exc)) from exc
    except TooManySamples as exc:
        raise InvalidParameter(str(exc)) from exc


def mapped(work: Callable[P, T]) -> Callable[P, T]:
    @wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        with store_errors():
            return work(*args, **kwargs)

    return run


def embed_uploads(
    service: WriterService, uploads: list[BinaryIO], settings: Settings, keep_images: bool = False
) -> tuple[np.ndarray, list[bytes] | None]:
    """Every file → its embedding (N×dim), and with `keep_images` each image re-encoded for the
    store (never the upload's bytes: app/service/writer_images.py). Any bad file fails the
    request, named by its place, so an enrolment is never built from part of what was sent."""
    kept: list[bytes] = []
    keep = (lambda _, image: kept.append(storable_png(image))) if keep_images else None
    inputs = every_input(uploads, service.embedder.manifest.preprocessing, settings, "files", keep)
    return service.embedder.embed(inputs), kept if keep_images else None


@mapped
def enrol(
    service: WriterService, name: str, uploads: list[BinaryIO], settings: Settings, store_images: bool
) -> Writer:
    embeddings, images = embed_uploads(service, uploads, settings, keep_images=store_images)
    return service.store.enrol(name, embeddings, service.version, images)


@mapped
def add_samples(
    service: WriterService, writer_id: int, uploads: list[BinaryIO], settings: Settings, store_images: bool
) -> Writer:
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


@mapped
def page(service: WriterService, after: int, limit: int) -> tuple[list[Writer], int]:
    """Writers with ids above `after`, one more than `limit` (is there a next page?), and the total."""
    return service.store.writers(after, limit + 1), service.store.count()


@mapped
def delete(service: WriterService, writer_id: int) -> None:
    if not service.store.delete(writer_id):
        raise UnknownWriter(f"no writer with id {writer_id}")


@mapped
def identify(service: WriterService, uploads: list[BinaryIO], settings: Settings, k: int) -> IdentifyResponse:
    """All the images are taken to be by one writer: their embeddings are averaged."""
    embeddings, _ = embed_uploads(service, uploads, settings)
    ids, means = service.store.means(service.version)
    matches = rank_writers(mean_embedding(embeddings), ids, means, k)
    names = service.store.names([m.writer_id for m in matches])
    candidates = [Candidate(id=m.writer_id, name=names.get(m.writer_id, ""), score=m.score) for m in matches]
    best = service.store.get(matches[0].writer_id) if matches else None
    threshold = service.threshold(len(embeddings), best.samples if best else None)
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
