"""The Open Inference Protocol (KServe v2) REST API beside the simple one, for Triton and KServe clients.

A model is named by its manifest `name` (`letters`; its task, `letter`, is accepted too) and
versioned by the manifest's `version`. It takes one of two inputs: the manifest's own (FP32,
N×1×S×S, already preprocessed, as Triton serving the exported repository takes it) or `image_bytes`
(BYTES, one encoded image per element: raw bytes in binary form, base64 in JSON), decoded and
preprocessed exactly as `POST /predict` does. It answers one FP32 output per head, its logits,
named as in the ONNX graph (the head's name is accepted too), or with `"classification": k` that
output's top-k as "value:index:label" strings. Errors are the protocol's `{"error": "..."}`.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from app.api.deps import ComputeDep, MetricsDep, RegistryDep, SettingsDep
from app.api.health import check_every_worker_serves
from app.api.predict import Stopwatch, prepare
from app.config import Settings
from app.errors import ModelNotReady, ServiceError, UnknownTask
from app.runtime.compute import Compute
from app.runtime.registry import LoadedModel, ModelRegistry
from app.schemas.v2 import (
    BYTES,
    HEADER_LENGTH,
    JSON_STRUCTURE_VALUES,
    InferRequest,
    InputTensor,
    OutputTensor,
    ProtocolError,
    RequestedOutput,
    check_json_values,
    classification,
    encode_infer_response,
    error_body,
    parse_infer_request,
)
from app.service.images import check_decode_budget
from contract.manifest import Head, Manifest

IMAGE_BYTES = "image_bytes"
PLATFORM = "onnxruntime_onnx"
SERVER_NAME = "handwriting-service"
EXTENSIONS = ["binary_tensor_data", "classification"]
_DATATYPES = {"float32": "FP32"}


class V2Route(APIRoute):
    """Answers a domain error in the protocol's form (`{"error": message}`), its status kept."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as exc:
                return JSONResponse(error_body(exc.message), status_code=exc.status_code, headers=exc.headers)

        return handle


# Not in the OpenAPI schema: the protocol has its own specification, and its bodies are not JSON alone.
router = APIRouter(prefix="/v2", tags=["v2"], route_class=V2Route, include_in_schema=False)


@router.get("")
async def server_metadata(request: Request) -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": request.app.version, "extensions": EXTENSIONS}


@router.get("/health/live")
async def server_live() -> Response:
    return Response()


@router.get("/health/ready")
async def server_ready(registry: RegistryDep, metrics: MetricsDep, settings: SettingsDep) -> Response:
    if not registry.ready:
        raise ModelNotReady("models are still loading" if not registry.loaded else "no model is loaded")
    check_every_worker_serves(metrics, settings)
    return Response()


@router.get("/models/{name}")
async def model_metadata(name: str, registry: RegistryDep) -> dict[str, Any]:
    return metadata(find_model(registry, name))


@router.get("/models/{name}/versions/{version}")
async def model_version_metadata(name: str, version: str, registry: RegistryDep) -> dict[str, Any]:
    return metadata(find_model(registry, name, version))


@router.get("/models/{name}/ready")
async def model_ready(name: str, registry: RegistryDep) -> Response:
    find_model(registry, name)
    return Response()


@router.get("/models/{name}/versions/{version}/ready")
async def model_version_ready(name: str, version: str, registry: RegistryDep) -> Response:
    find_model(registry, name, version)
    return Response()


@router.post("/models/{name}/infer")
async def infer(
    name: str, request: Request, registry: RegistryDep, settings: SettingsDep, compute: ComputeDep
) -> Response:
    return await run_infer(find_model(registry, name), request, settings, compute)


@router.post("/models/{name}/versions/{version}/infer")
async def infer_version(
    name: str,
    version: str,
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    compute: ComputeDep,
) -> Response:
    return await run_infer(find_model(registry, name, version), request, settings, compute)


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


async def run_infer(model: LoadedModel, request: Request, settings: Settings, compute: Compute) -> Response:
    if request.headers.get("content-encoding", "identity").lower() != "identity":
        raise ProtocolError("compressed request bodies (Content-Encoding) are not supported")
    try:
        body = await request.body()  # within the byte cap (BodySizeLimitMiddleware, every path)
    except ClientDisconnect:
        # Never reaches anyone: the client left, or the byte cap has already answered 413.
        return Response(status_code=400)
    header_length = request.headers.get(HEADER_LENGTH)
    # Here, not in the computation: a body of millions of JSON values is refused before it is
    # parsed, and without taking a compute slot.
    check_json_values(body, header_length, max_json_values(model.manifest, settings))
    # At most `max_concurrency` requests compute at once; once a worker is ours, the work is answered.
    content, json_length = await compute.run(partial(infer_body, model, body, header_length, settings))
    if json_length is None:
        return Response(content, media_type="application/json")
    return Response(content, media_type="application/octet-stream", headers={HEADER_LENGTH: str(json_length)})


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
    files = []
    for i, element in enumerate(tensor.data):
        try:
            # JSON can carry only text, so there an image travels base64-encoded.
            files.append(element if tensor.binary else base64.b64decode(element, validate=True))
        except binascii.Error as exc:
            raise ProtocolError(f"{IMAGE_BYTES}[{i}]: not valid base64 ({exc})") from exc
    # From the headers, before any image is decoded.
    check_decode_budget(files, settings.max_decode_cost, settings.max_pixels, settings.max_side)
    images = []
    for i, data in enumerate(files):
        try:
            images.append(prepare(io.BytesIO(data), manifest, settings, Stopwatch()))
        except ServiceError as exc:
            # The image's own answer (413, 415, 422 as for /predict), saying which image it was.
            raise type(exc)(f"{IMAGE_BYTES}[{i}]: {exc.message}", exc.headers) from exc
    return np.stack(images)


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
