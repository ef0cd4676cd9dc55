"""The Open Inference Protocol's work, free of HTTP: a model found by name, its metadata, and an
infer request's body → the response's (its images through the same pipeline as `POST /predict`).
The protocol's codec is app/schemas/v2.py; its routes, app/api/v2.py."""

from __future__ import annotations

import base64
import binascii
import io
import math
from typing import Any, BinaryIO

import numpy as np

from app.config import Settings
from app.errors import UnknownTask
from app.runtime.registry import LoadedModel, ModelRegistry
from app.schemas.v2 import (
    BYTES,
    JSON_STRUCTURE_VALUES,
    InferRequest,
    InputTensor,
    OutputTensor,
    ProtocolError,
    RequestedOutput,
    classification,
    encode_infer_response,
    parse_infer_request,
)
from app.service.pipeline import every_input
from contract.manifest import Head, Manifest

IMAGE_BYTES = "image_bytes"
PLATFORM = "onnxruntime_onnx"
SERVER_NAME = "handwriting-service"
EXTENSIONS = ["binary_tensor_data", "classification"]
_DATATYPES = {"float32": "FP32"}


def find_model(registry: ModelRegistry, name: str, version: str | None = None) -> LoadedModel:
    """The model named `name` (manifest name or task), at `version` if given; else the error why not."""
    model = registry.named(name)
    if model is None:
        if not registry.loaded or name in registry.failed:
            registry.get(name)  # raises ModelNotReady, saying why
        known = ", ".join(sorted(m.manifest.name for m in registry.models.values())) or "none"
        raise UnknownTask(f"unknown model {name!r}; known models: {known}")
    if version is not None and version != model.manifest.version:
        raise UnknownTask(f"model {name!r} has no version {version!r}; it serves {model.manifest.version!r}")
    return model


def metadata(model: LoadedModel) -> dict[str, Any]:
    m = model.manifest
    return {
        "name": m.name,
        "versions": [m.version],
        "platform": PLATFORM,
        "inputs": [
            {"name": m.input.name, "datatype": _DATATYPES[m.input.dtype], "shape": [-1, *m.input.shape[1:]]},
            {"name": IMAGE_BYTES, "datatype": BYTES, "shape": [-1]},
        ],
        "outputs": [{"name": h.output, "datatype": "FP32", "shape": [-1, len(h.labels)]} for h in m.heads],
    }


def max_json_values(manifest: Manifest, settings: Settings) -> int:
    """The most values a legal request to this model holds in JSON: a full batch of its FP32
    input as numbers, and the request's own fields."""
    return settings.max_batch_files * math.prod(manifest.input.shape[1:]) + JSON_STRUCTURE_VALUES


def infer_body(
    model: LoadedModel, body: bytes, header_length: str | None, settings: Settings
) -> tuple[bytes, int | None]:
    """Blocking: request body → response body (and its JSON header's length when binary follows)."""
    request = parse_infer_request(body, header_length)
    outputs = output_heads(request, model.manifest)
    logits = model.classifier.predict(model_input(request, model.manifest, settings))
    tensors = [output_tensor(output, head, logits) for output, head in outputs]
    return encode_infer_response(model.manifest.name, model.manifest.version, request.id, tensors)


def model_input(request: InferRequest, manifest: Manifest, settings: Settings) -> np.ndarray:
    """The request's one input → the model's N×1×S×S float32 batch."""
    names = [tensor.name for tensor in request.inputs]
    if len(names) != 1 or names[0] not in (manifest.input.name, IMAGE_BYTES):
        raise ProtocolError(
            f"send exactly one input, {manifest.input.name!r} (FP32, preprocessed) or {IMAGE_BYTES!r} "
            f"(BYTES, encoded images); got {names}"
        )
    tensor = request.inputs[0]
    count = tensor.shape[0] if tensor.shape else 0
    if not 1 <= count <= settings.max_batch_files:
        raise ProtocolError(
            f"input {tensor.name!r}: between 1 and {settings.max_batch_files} images, got {count}"
        )
    if tensor.name == IMAGE_BYTES:
        return image_batch(tensor, manifest, settings)
    return tensor_batch(tensor, manifest)


def tensor_batch(tensor: InputTensor, manifest: Manifest) -> np.ndarray:
    expected = [tensor.shape[0], *manifest.input.shape[1:]]
    if tensor.datatype != "FP32" or list(tensor.shape) != expected:
        raise ProtocolError(
            f"input {tensor.name!r} must be FP32 of shape [N, {', '.join(map(str, expected[1:]))}], "
            f"got {tensor.datatype} {list(tensor.shape)}"
        )
    assert isinstance(tensor.data, np.ndarray)  # numeric datatypes parse to arrays
    if not np.isfinite(tensor.data).all():
        raise ProtocolError(f"input {tensor.name!r} holds NaN or infinite values")
    return np.ascontiguousarray(tensor.data, dtype=np.float32)


def image_batch(tensor: InputTensor, manifest: Manifest, settings: Settings) -> np.ndarray:
    if tensor.datatype != BYTES or len(tensor.shape) != 1:
        raise ProtocolError(
            f"input {IMAGE_BYTES!r} must be BYTES of shape [N], got {tensor.datatype} {list(tensor.shape)}"
        )
    assert isinstance(tensor.data, list)  # BYTES parse to elements
    files: list[BinaryIO] = []
    for i, element in enumerate(tensor.data):
        try:
            # JSON can carry only text, so there an image travels base64-encoded.
            files.append(io.BytesIO(element if tensor.binary else base64.b64decode(element, validate=True)))
        except binascii.Error as exc:
            raise ProtocolError(f"{IMAGE_BYTES}[{i}]: not valid base64 ({exc})") from exc
    # Each image's own answer (413, 415, 422 as for /predict), saying which image it was.
    return every_input(files, manifest.preprocessing, settings, IMAGE_BYTES)


def output_heads(request: InferRequest, manifest: Manifest) -> list[tuple[RequestedOutput, Head]]:
    """The requested outputs (all heads when none is named) with their heads, checked before any work."""
    if request.outputs is None:
        return [(RequestedOutput(h.output, request.binary_outputs), h) for h in manifest.heads]
    heads = {head.output: head for head in manifest.heads} | {head.name: head for head in manifest.heads}
    unknown = [output.name for output in request.outputs if output.name not in heads]
    if unknown:
        known = ", ".join(h.output for h in manifest.heads)
        raise ProtocolError(f"unknown output {unknown[0]!r}; outputs: {known}")
    return [(output, heads[output.name]) for output in request.outputs]


def output_tensor(output: RequestedOutput, head: Head, logits: dict[str, np.ndarray]) -> OutputTensor:
    values = logits[head.name]
    if output.classification:
        top = classification(values, output.classification, head.labels)
        return OutputTensor(output.name, BYTES, top, output.binary)
    return OutputTensor(output.name, "FP32", values, output.binary)
