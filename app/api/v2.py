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

from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from app.api.deps import ComputeDep, MetricsDep, RegistryDep, SettingsDep
from app.config import Settings
from app.errors import ServiceError
from app.http.routes import V2_INFER_PATH, V2_INFER_VERSION_PATH, V2_PREFIX
from app.runtime.compute import Compute
from app.runtime.registry import LoadedModel
from app.schemas.v2 import HEADER_LENGTH, ProtocolError, check_json_values, error_body
from app.service.readiness import check_ready
from app.service.v2 import EXTENSIONS, SERVER_NAME, find_model, infer_body, max_json_values, metadata


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
router = APIRouter(prefix=V2_PREFIX, tags=["v2"], route_class=V2Route, include_in_schema=False)


@router.get("")
async def server_metadata(request: Request) -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": request.app.version, "extensions": EXTENSIONS}


@router.get("/health/live")
async def server_live() -> Response:
    return Response()


@router.get("/health/ready")
async def server_ready(registry: RegistryDep, metrics: MetricsDep, settings: SettingsDep) -> Response:
    check_ready(registry, metrics, settings)
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


@router.post(V2_INFER_PATH)
async def infer(
    name: str, request: Request, registry: RegistryDep, settings: SettingsDep, compute: ComputeDep
) -> Response:
    return await run_infer(find_model(registry, name), request, settings, compute)


@router.post(V2_INFER_VERSION_PATH)
async def infer_version(
    name: str,
    version: str,
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    compute: ComputeDep,
) -> Response:
    return await run_infer(find_model(registry, name, version), request, settings, compute)


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
