"""Writer identification's resources: the embedding model (HWR_WRITER_MODEL_DIR) and the
enrolments' store (HWR_WRITER_DB), loaded at start-up beside the classifiers and closed at
shutdown. Either may be missing: the rest of the service serves without them, the writer
endpoints answer 503 (`model_not_ready`, `writer_store_unavailable`) saying why, and each of
their requests tries loading again, so a model installed or a database back later is used
without a restart.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from app.config import Settings
from app.errors import ModelNotReady, WritersDisabled, WriterStoreUnavailable
from app.runtime.embedder import WriterEmbedder, WriterModelError, load_embedder
from app.runtime.writer_store import StoreUnavailable, WriterStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriterService:
    embedder: WriterEmbedder
    store: WriterStore
    fixed_threshold: float | None  # HWR_WRITER_THRESHOLD; else the manifest's open-set table

    @property
    def version(self) -> str:
        return self.embedder.manifest.version

    def threshold(self, characters: int, enrolled: int | None = None) -> float:
        """The bar for a query of `characters` against a writer enrolled with `enrolled` characters
        (contract/writer_decision.py; None: the calibration's default enrolment size)."""
        if self.fixed_threshold is not None:
            return self.fixed_threshold
        return self.embedder.manifest.threshold_for(characters, enrolled)


class Writers:
    """The writer service once loaded; `get()` loads it if it is not yet (a failure is retried
    at the next call)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.service: WriterService | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """At start-up: the writer endpoints are ready with the rest, or logged why not."""
        if not self.settings.writers_enabled:
            log.info("writer identification switched off (HWR_WRITERS_ENABLED=false)")
            return
        try:
            self.get()
        except (ModelNotReady, WriterStoreUnavailable) as exc:
            log.info("writer identification not loaded: %s", exc.message)

    def get(self) -> WriterService:
        """Blocking: the loaded service, or WritersDisabled / ModelNotReady / WriterStoreUnavailable
        saying why not."""
        if not self.settings.writers_enabled:
            raise WritersDisabled("writer identification is switched off on this deployment")
        with self._lock:
            if self.service is not None:
                return self.service
            settings = self.settings
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
            self.service = WriterService(embedder, store, settings.writer_threshold)
            return self.service

    def close(self) -> None:
        """At shutdown: the store's connections closed (a PostgreSQL pool's)."""
        with self._lock:
            service, self.service = self.service, None
        if service is not None:
            service.store.close()
