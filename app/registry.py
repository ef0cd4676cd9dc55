"""Find, verify and load the models under `model_dir`, once, at start-up.

Every subdirectory with a `manifest.json` is a model. A model that fails any check (manifest
schema, ONNX checksum, graph vs manifest) is skipped with a log line naming the file; the others
still serve. Models are keyed by `manifest.task`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors
from pydantic import ValidationError

from app.errors import ModelNotReady, UnknownTask
from app.inference import ModelMismatch, OnnxClassifier, create_session
from app.manifest import MANIFEST_FILE, Manifest, sha256_of

log = logging.getLogger(__name__)

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

    @property
    def providers(self) -> list[str]:
        return list(self.classifier.session.get_providers())


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


def load_model(directory: Path, manifest: Manifest, intra_op_threads: int = 0) -> LoadedModel:
    """Verify the ONNX file against its manifest and build its session. Raises ModelLoadError."""
    onnx_path = (directory / manifest.onnx.file).resolve()
    shown = f"{directory.name}/{manifest.onnx.file}"
    if not onnx_path.is_relative_to(directory.resolve()):
        raise ModelLoadError(f"{shown}: the ONNX file must lie inside the model directory")
    if not onnx_path.is_file():
        raise ModelLoadError(f"{shown}: file not found")
    try:
        digest = sha256_of(onnx_path)
    except OSError as exc:
        raise ModelLoadError(f"{shown}: cannot be read") from exc
    if digest != manifest.onnx.sha256:
        raise ModelLoadError(
            f"{shown}: sha256 mismatch (manifest {manifest.onnx.sha256[:12]}…, file {digest[:12]}…)"
        )
    try:
        session = create_session(onnx_path, intra_op_threads)
    except _ORT_ERRORS as exc:
        raise ModelLoadError(f"{shown}: ONNX Runtime cannot load it") from exc
    try:
        classifier = OnnxClassifier(session, manifest)
    except ModelMismatch as exc:
        raise ModelLoadError(f"{shown}: graph does not match manifest: {exc}") from exc
    return LoadedModel(manifest=manifest, classifier=classifier, directory=directory)


def load_models(model_dir: Path, intra_op_threads: int = 0) -> ModelRegistry:
    registry = ModelRegistry()
    if not model_dir.is_dir():
        log.warning("model directory %s does not exist; no models loaded", model_dir)
    else:
        for directory in sorted(p for p in model_dir.iterdir() if (p / MANIFEST_FILE).is_file()):
            _load_into(registry, directory, intra_op_threads)
    registry.loaded = True
    log.info("models ready: %s", registry.tasks or "none")
    return registry


def _load_into(registry: ModelRegistry, directory: Path, intra_op_threads: int) -> None:
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
        model = load_model(directory, manifest, intra_op_threads)
    except ModelLoadError as exc:
        # The client-facing reason names the file; the log adds the underlying error.
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        log.error("skipping model %s (task %r): %s%s", directory / manifest.onnx.file, task, exc, cause)
        registry.failed[task] = str(exc)
        return
    registry.failed.pop(task, None)
    registry.models[task] = model
    log.info(
        "loaded model %s v%s for task %r from %s on %s",
        manifest.name,
        manifest.version,
        task,
        directory,
        model.providers,
    )
