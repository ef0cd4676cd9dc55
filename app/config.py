"""Every knob of the service, read from `HWR_*` environment variables and validated at start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The repository's exported artifacts; resolved from the package, not the working directory.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models"
# A token short enough to guess is no authentication; 32 hex characters are 128 bits.
MIN_API_TOKEN_LENGTH = 16
# Writer identification (app/writers/): the embedding model, and the enrolments' database. A path
# under the repository, so `make serve` keeps enrolments across restarts; in a read-only container
# point HWR_WRITER_DB at a mounted volume (docs/writers.md, "Storage and limits").
DEFAULT_WRITER_MODEL_DIR = DEFAULT_MODEL_DIR / "writers"
# Room for the multipart framing (boundaries, part headers) around an upload of the cap's size.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
DEFAULT_WRITER_DB = str(Path(__file__).resolve().parent.parent / "data" / "writers.sqlite3")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HWR_", extra="ignore", frozen=True)

    model_dir: Path = DEFAULT_MODEL_DIR
    # Caps on what a client may send: raw bytes, decoded pixels, and the longer side.
    max_upload_bytes: int = Field(default=10_000_000, gt=0)
    # A file part up to this size stays in memory while its request waits; a larger one spools to
    # a temporary file in /tmp. Starlette's own 1 MB made every phone photo a file write and read
    # (a measurable part of a 12-MP JPEG's request, docs/speed.md); a container's /tmp is RAM anyway.
    # Admission bounds the uploads held at once (docs/reliability.md).
    upload_memory_bytes: int = Field(default=10_000_000, ge=0)
    max_pixels: int = Field(default=40_000_000, gt=0)
    max_side: int = Field(default=20_000, gt=0)
    default_k: int = Field(default=5, ge=1)
    # k is also capped per request by the number of labels of the model's first head.
    max_k: int = Field(default=50, ge=1)
    # Files per `POST /predict/{task}/batch` (the byte cap applies to the whole request).
    max_batch_files: int = Field(default=32, ge=1)
    # Per request with several images (batch, writer enrolment and identification, v2 infer):
    # the sum over its images of width × height × bytes per pixel (16-bit samples and colour
    # counted), read from the headers; more → 413 `decode_budget_exceeded` before any is decoded.
    # The per-file caps alone let one request hold its worker for 32 maximal images in turn
    # (docs/reliability.md); this admits the costliest single image (a 40 Mpx 16-bit RGBA PNG,
    # 319 MB; a 16-bit colour one 240 MB) and not two 16-bit colour pages.
    max_decode_cost: int = Field(default=320_000_000, gt=0)
    # `POST /read/{task}`: candidate characters per image (each mark, and every span between the
    # candidate cuts of touching ones), counted before any is preprocessed; more → 422
    # `too_many_pieces`. A 10-digit number gives 86, three lines of ten characters 229; a page of
    # 128 scribbles 3,584 (1.3 s of CPU and, in one model call, 0.8 GB kept by ONNX Runtime).
    read_max_pieces: int = Field(default=256, ge=1)
    # Words a `POST /read` request may send as its own lexicon (the `words` form field); each is
    # tokenised into the model's labels and scored against every written word of the image.
    read_max_lexicon_words: int = Field(default=20_000, ge=1)
    # Inputs per ONNX Runtime call, for every model and endpoint: larger batches (a /read image's
    # pieces, a dynamic or a v2 batch) run in chunks of this many, so one call's memory is bounded.
    inference_max_batch: int = Field(default=64, ge=1)
    # Dynamic micro-batching of concurrent single predictions (app/runtime/batching.py): at most this many
    # inputs per model call (1 turns it off), held at most this long for more to arrive while
    # other requests are still preparing theirs.
    # Off by default: on a 2-core CPU it changed neither throughput nor latency beyond run-to-run
    # noise (docs/benchmarks.md); it pays where the model call dominates (GPU, bigger models).
    batch_max_size: int = Field(default=1, ge=1)
    batch_max_wait_ms: float = Field(default=2.0, ge=0)
    # "int8": each model's int8 variant where its manifest records one within accuracy tolerance
    # and the process runs on CPU, else the float model (docs/quantization.md: 2.5–3× faster
    # inference, ≤ 0.05 points lost). "float" always serves the float model.
    model_variant: Literal["float", "int8"] = "int8"
    # JPEGs larger than this decode at 1/2, 1/4 or 1/8 scale (DCT scaling) with the longer side
    # still ≥ this (or ≥ the model's `max_side` if less): a 12-MP photo then decodes to 500×375,
    # 3× the 160 px first look, so the closer look at a small mark still has pixels to gain; a
    # 640×480 one at full size (docs/benchmarks.md). 0: full size.
    jpeg_decode_min_side: int = Field(default=480, ge=0)
    # Serving processes (`python -m app` runs uvicorn with this many workers), each with its own
    # models, event loop and the per-process limits below. One process's Python (HTTP, multipart,
    # JSON) holds the GIL: on 2 cores two processes served ~1.5× the requests of one
    # (docs/benchmarks.md). /metrics adds up all of them.
    workers: int = Field(default=2, ge=1)
    # Threads per model call; 0 leaves ONNX Runtime's own default (one per physical core). One:
    # the models are tiny (~1 ms), so more threads mostly wait on each other; processes use the cores.
    ort_intra_op_threads: int = Field(default=1, ge=0)
    # ONNX Runtime's CPU memory arena. Off: an arena keeps the memory of the largest batch a
    # session ever ran for the life of the process (app/runtime/inference.py); its latency cost is
    # measured in docs/reliability.md.
    ort_cpu_mem_arena: bool = False
    # OpenCV's threads per call, per process; 0 leaves its default (one per core). One: its
    # images are small once decoded, and its pool's threads spin after each call, CPU spent for
    # nothing with one client (docs/speed.md); processes use the cores.
    opencv_threads: int = Field(default=1, ge=0)
    # glibc's mmap threshold, fixed per worker (app/runtime/memory.py): buffers above it are
    # returned to the system when freed, instead of staying in the heap after a large image.
    # 0: glibc's own dynamic threshold.
    malloc_mmap_threshold_bytes: int = Field(default=16 * 1024 * 1024, ge=0, le=32 * 1024 * 1024)
    # A worker holding more than this above its resident memory at start-up returns its free heap
    # memory to the system (malloc_trim, checked every second). 0: never.
    malloc_trim_margin_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    # Per worker process: predictions computed at once (decode → inference), and predict requests
    # admitted beyond those to upload or wait; any more at once get 503 + Retry-After. A maximal
    # (40 Mpx) photo needs ~400 MB while it decodes: workers × max_concurrency = 2 fit the
    # container's memory limit, and 2 CPUs gain nothing from more (docs/reliability.md).
    max_concurrency: int = Field(default=1, ge=1)
    # With max_concurrency 1: compute on the event loop, not in a worker thread (app/runtime/compute.py:
    # less CPU per request, but the process answers nothing else meanwhile, health probes
    # included: 0.5 s per maximal photo, up to 21 queued). Off by default so probes stay
    # answered; the cost is in docs/reliability.md. More at once always need threads.
    compute_in_event_loop: bool = False
    max_queue: int = Field(default=20, ge=0)
    retry_after_s: int = Field(default=1, ge=1)
    # A request must be received and given a worker within this, else 408 (still uploading) or
    # 503. On SIGTERM, in-flight requests get this long to finish: under Docker's 10 s stop
    # timeout, so the process ends on its own terms, not by SIGKILL.
    request_timeout_s: float = Field(default=30.0, gt=0)
    # A request body must keep coming at this many bytes per second on average once its first
    # `body_rate_grace_s` have passed, else 408 and its admission slot is free at once: 60 clients
    # sending a byte every 2 s held every slot of 2 workers, so every prediction got 503. 8 KiB/s
    # is a poor mobile uplink; a 10 MB upload needs 333 KB/s to beat the deadline anyway. 0: off.
    body_min_bytes_per_s: int = Field(default=8192, ge=0)
    body_rate_grace_s: float = Field(default=2.0, ge=0)
    # Before the app (app/http/connections.py): a request line + headers longer than this → 431 and
    # the connection closed (uvicorn's httptools had no cap: 300 MB headers were held); the whole
    # head within header_timeout_s of its first byte, else 408 and closed; a connection with no
    # request under way is closed after keep_alive_timeout_s (also before its first request).
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    header_timeout_s: float = Field(default=10.0, gt=0)
    keep_alive_timeout_s: float = Field(default=5.0, gt=0)
    shutdown_timeout_s: int = Field(default=8, ge=1)
    # Origins allowed to call the API from a browser (comma-separated or a JSON list); none by default.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # When set, /predict/* requires `Authorization: Bearer <token>`.
    api_token: SecretStr | None = None
    # Writer identification: an SQLite file path or a postgresql:// URL (the `postgres` extra).
    # False: the writer endpoints answer 404 `writers_disabled`; no writer model is loaded and no
    # store is opened (a deployment without a shared database must not keep enrolments on a
    # replica's own disk).
    writers_enabled: bool = True
    writer_db: str = DEFAULT_WRITER_DB
    writer_model_dir: Path = DEFAULT_WRITER_MODEL_DIR
    # Best cosine score below this → "unknown", whatever the query's size. Unset: the model's own
    # verification EER thresholds (writer_manifest.json), per number of query characters.
    writer_threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    writer_max_samples: int = Field(default=500, ge=1)  # per writer, so one cannot fill the database
    writer_max_writers: int = Field(default=10_000, ge=1)  # nor enrol writers without end
    log_level: Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"] = "INFO"
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)

    @property
    def max_body_bytes(self) -> int:
        """The most a request body may hold: one upload of the cap's size and its multipart framing."""
        return self.max_upload_bytes + MULTIPART_OVERHEAD_BYTES

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return tuple(json.loads(text))
            return tuple(origin.strip() for origin in text.split(",") if origin.strip())
        return value

    @field_validator("cors_origins", mode="after")
    @classmethod
    def _origins_are_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            parts = urlsplit(origin)
            is_origin = (
                parts.scheme in ("http", "https")
                and parts.netloc
                and origin == f"{parts.scheme}://{parts.netloc}"
            )
            if origin != "*" and not is_origin:
                raise ValueError(f"CORS origin {origin!r} must be '*' or scheme://host[:port] with no path")
        return value

    @field_validator("api_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        # `HWR_API_TOKEN=` (empty) leaves authentication off rather than failing the length check.
        return None if value == "" else value

    @field_validator("api_token", mode="after")
    @classmethod
    def _token_is_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_API_TOKEN_LENGTH:
            raise ValueError(f"api_token must be at least {MIN_API_TOKEN_LENGTH} characters")
        return value

    @model_validator(mode="after")
    def _default_k_within_max(self) -> Settings:
        if self.default_k > self.max_k:
            raise ValueError(f"default_k ({self.default_k}) must not exceed max_k ({self.max_k})")
        return self
