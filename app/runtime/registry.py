"""Find, verify and load the models under `model_dir`, once, at start-up.

Every subdirectory with a `manifest.json` is a model. A model that fails any check (manifest
schema, ONNX checksum, graph vs manifest) is skipped with a log line naming the file; the others
still serve. Models are keyed by `manifest.task`.

Asked for a variant ("int8", HWR_MODEL_VARIANT), a model serves the manifest's file for it when the
manifest records it within its accuracy tolerance and it passes the same checks; otherwise the float
model serves, with a log line saying why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors
from pydantic import ValidationError

from app.errors import ModelNotReady, UnknownTask
from app.runtime.inference import (
    DEFAULT_MAX_BATCH,
    ModelMismatch,
    OnnxClassifier,
    create_session,
    default_providers,
)
from contract.manifest import MANIFEST_FILE, Manifest, sha256_of

log = logging.getLogger(__name__)

FLOAT = "float"  # the manifest's own `onnx` file

# What building an ONNX Runtime session can raise for a bad or unreadable model file.
_ORT_ERRORS: tuple[type[Exception], ...] = (
    ort_errors.Fail,
    ort_errors.InvalidArgument,
    ort_errors.NoSuchFile,
    ort_errors.NoModel,
    ort_errors.EngineError,
    ort_errors.RuntimeException,
    ort_errors.InvalidProtobuf,
    ort_errors.InvalidGraph,
    ort_errors.NotImplemented,
    ort_errors.EPFail,
    RuntimeError,
)


class ModelLoadError(Exception):
    """One model could not be loaded; the message names the file but no server path, so it
    can be shown to clients (readiness, 503 bodies)."""


@dataclass(frozen=True)
class LoadedModel:
    manifest: Manifest
    classifier: OnnxClassifier
    directory: Path
    # Which file serves: "float" (manifest.onnx) or a key of manifest.variants ("int8").
    variant: str = FLOAT

    @property
    def providers(self) -> list[str]:
        return list(self.classifier.session.get_providers())

    @property
    def onnx_sha256(self) -> str:
        """The checksum of the file actually served."""
        if self.variant == FLOAT:
            return self.manifest.onnx.sha256
        return self.manifest.variants[self.variant].sha256


@dataclass
class ModelRegistry:
    """The loaded models by task. `loaded` turns true once start-up loading has finished."""

    models: dict[str, LoadedModel] = field(default_factory=dict)
    # Task → why its model was skipped (only when the manifest itself could be read).
    failed: dict[str, str] = field(default_factory=dict)
    loaded: bool = False

    @property
    def ready(self) -> bool:
        return self.loaded and bool(self.models)

    @property
    def tasks(self) -> list[str]:
        return sorted(self.models)

    def named(self, name: str) -> LoadedModel | None:
        """The model whose task or manifest name is `name` (the v2 protocol names models either way)."""
        return next((m for m in self.models.values() if name in (m.manifest.name, m.manifest.task)), None)

    def get(self, task: str) -> LoadedModel:
        """The model for `task`, or the domain error that says why there is none."""
        model = self.models.get(task)
        if model is not None:
            return model
        if not self.loaded:
            raise ModelNotReady("models are still loading; retry shortly")
        if task in self.failed:
            raise ModelNotReady(f"the model for task {task!r} failed to load: {self.failed[task]}")
        known = ", ".join(self.tasks) or "none"
        raise UnknownTask(f"unknown task {task!r}; known tasks: {known}")


def load_model(
    directory: Path,
    manifest: Manifest,
    intra_op_threads: int = 0,
    variant: str = FLOAT,
    max_batch: int = DEFAULT_MAX_BATCH,
    cpu_mem_arena: bool = False,
) -> LoadedModel:
    """Verify the ONNX file against its manifest and build its session. Raises ModelLoadError.

    A `variant` other than float that is missing, out of tolerance or fails a check falls back to
    the float file (logged); only a failure of the float file raises."""
    if variant != FLOAT and variant not in manifest.variants:
        log.info("model %s: no %s variant recorded; serving the float model", directory, variant)
    elif variant != FLOAT:
        try:
            return _load_variant(directory, manifest, intra_op_threads, variant, max_batch, cpu_mem_arena)
        except ModelLoadError as exc:
            cause = f" ({exc.__cause__})" if exc.__cause__ else ""
            log.warning("model %s: serving the float model, not %s: %s%s", directory, variant, exc, cause)
    classifier = _classifier(
        directory,
        manifest,
        manifest.onnx.file,
        manifest.onnx.sha256,
        intra_op_threads,
        max_batch,
        cpu_mem_arena,
    )
    return LoadedModel(manifest=manifest, classifier=classifier, directory=directory)


def _load_variant(
    directory: Path,
    manifest: Manifest,
    intra_op_threads: int,
    variant: str,
    max_batch: int,
    cpu_mem_arena: bool = False,
) -> LoadedModel:
    entry = manifest.variants[variant]
    shown = f"{directory.name}/{entry.file}"
    if not entry.within_tolerance:
        drop = -entry.delta.get(entry.primary_metric, float("nan")) * 100
        allowed = entry.max_drop_points
        raise ModelLoadError(
            f"{shown}: {entry.primary_metric} drops {drop:.2f} points, over the {allowed} allowed"
        )
    # The speed-up is measured on CPU int8 kernels (docs/quantization.md); ONNX Runtime's CUDA
    # provider has few int8 kernels, so a GPU keeps the float model.
    provider = default_providers()[0]
    if provider != "CPUExecutionProvider":
        raise ModelLoadError(f"{shown}: quantised for CPU, but this process serves on {provider}")
    # Its accuracy was measured with VNNI dot products; x86 without them saturates u8×s8 sums in
    # 16 bits, which can cost accuracy the manifest never measured.
    if not cpu_has_vnni():
        raise ModelLoadError(f"{shown}: measured on CPUs with VNNI int8 instructions; this one has none")
    classifier = _classifier(
        directory, manifest, entry.file, entry.sha256, intra_op_threads, max_batch, cpu_mem_arena
    )
    return LoadedModel(manifest=manifest, classifier=classifier, directory=directory, variant=variant)


def cpu_has_vnni(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has AVX-512 VNNI or AVX-VNNI (Linux; elsewhere: assumed not)."""
    try:
        flags = set(cpuinfo.read_text(encoding="utf-8", errors="replace").split())
    except OSError:
        return False
    return bool(flags & {"avx512_vnni", "avx_vnni"})


def _classifier(
    directory: Path,
    manifest: Manifest,
    file: str,
    sha256: str,
    intra_op_threads: int,
    max_batch: int,
    cpu_mem_arena: bool = False,
) -> OnnxClassifier:
    """`file` checked against `sha256` and, once loaded, against the manifest's input and heads."""
    onnx_path = (directory / file).resolve()
    shown = f"{directory.name}/{file}"
    if not onnx_path.is_relative_to(directory.resolve()):
        raise ModelLoadError(f"{shown}: the ONNX file must lie inside the model directory")
    if not onnx_path.is_file():
        raise ModelLoadError(f"{shown}: file not found")
    try:
        digest = sha256_of(onnx_path)
    except OSError as exc:
        raise ModelLoadError(f"{shown}: cannot be read") from exc
    if digest != sha256:
        raise ModelLoadError(f"{shown}: sha256 mismatch (manifest {sha256[:12]}…, file {digest[:12]}…)")
    try:
        session = create_session(onnx_path, intra_op_threads, cpu_mem_arena=cpu_mem_arena)
    except _ORT_ERRORS as exc:
        raise ModelLoadError(f"{shown}: ONNX Runtime cannot load it") from exc
    try:
        return OnnxClassifier(session, manifest, max_batch)
    except ModelMismatch as exc:
        raise ModelLoadError(f"{shown}: graph does not match manifest: {exc}") from exc


def load_models(
    model_dir: Path,
    intra_op_threads: int = 0,
    variant: str = FLOAT,
    max_batch: int = DEFAULT_MAX_BATCH,
    cpu_mem_arena: bool = False,
) -> ModelRegistry:
    """`variant`: which file each model should serve where its manifest allows (see load_model);
    `max_batch`: inputs per ONNX Runtime call (larger batches run in chunks); `cpu_mem_arena`:
    ONNX Runtime's CPU memory arena (app/runtime/inference.py)."""
    registry = ModelRegistry()
    if not model_dir.is_dir():
        log.warning("model directory %s does not exist; no models loaded", model_dir)
    else:
        for directory in sorted(p for p in model_dir.iterdir() if (p / MANIFEST_FILE).is_file()):
            _load_into(registry, directory, intra_op_threads, variant, max_batch, cpu_mem_arena)
    registry.loaded = True
    log.info("models ready: %s", registry.tasks or "none")
    return registry


def _load_into(
    registry: ModelRegistry,
    directory: Path,
    intra_op_threads: int,
    variant: str,
    max_batch: int,
    cpu_mem_arena: bool = False,
) -> None:
    try:
        manifest = Manifest.load(directory)
    except (OSError, ValidationError, ValueError) as exc:
        log.error("skipping model %s: invalid %s: %s", directory, MANIFEST_FILE, exc)
        return
    task = manifest.task
    if task in registry.models:
        other = registry.models[task].directory
        log.error("skipping model %s: task %r is already served by %s", directory, task, other)
        return
    try:
        model = load_model(directory, manifest, intra_op_threads, variant, max_batch, cpu_mem_arena)
    except ModelLoadError as exc:
        # The client-facing reason names the file; the log adds the underlying error.
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        log.error("skipping model %s (task %r): %s%s", directory / manifest.onnx.file, task, exc, cause)
        registry.failed[task] = str(exc)
        return
    registry.failed.pop(task, None)
    registry.models[task] = model
    log.info(
        "loaded model %s v%s (%s) for task %r from %s on %s",
        manifest.name,
        manifest.version,
        model.variant,
        task,
        directory,
        model.providers,
    )
