"""What the routes share: their dependencies (what the lifespan loaded, injected with `Depends`) and
their OpenAPI declarations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from app.config import Settings
from app.http.uploads import IMAGE_FIELD
from app.metrics import Metrics
from app.runtime.batching import DynamicBatcher
from app.runtime.compute import Compute
from app.runtime.registry import ModelRegistry
from app.schemas.predict import ErrorResponse
from app.service.images import SUPPORTED_FORMATS


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_compute(request: Request) -> Compute:
    return request.app.state.compute


async def get_batchers(request: Request) -> dict[str, DynamicBatcher]:
    return request.app.state.batchers


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ComputeDep = Annotated[Compute, Depends(get_compute)]
BatchersDep = Annotated[dict[str, DynamicBatcher], Depends(get_batchers)]

_ERROR_DESCRIPTIONS = {
    400: "The request body is not parseable multipart form data.",
    401: "Missing or wrong bearer token (only when the service has `HWR_API_TOKEN` set).",
    404: "Unknown task.",
    408: "The upload was not received within the request timeout.",
    413: "Upload larger than the byte cap, or image larger than the pixel/side cap.",
    415: "Not a supported image (PNG, JPEG, GIF, BMP, TIFF, WEBP), or corrupt/truncated.",
    422: "Invalid parameter, empty file, or no ink found in the image.",
    503: "No model loaded for this task (still loading, or it failed to load); or the service is "
    "overloaded or the request timed out (then with `Retry-After`).",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer, all with the one error body."""
    return {
        status: {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS[status]} for status in statuses
    }


def one_file_body(field: str, description: str) -> dict[str, Any]:
    """OpenAPI's `requestBody` for a multipart form of one required file, as FastAPI writes it
    for an `UploadFile` parameter."""
    schema = {"type": "string", "contentMediaType": "application/octet-stream", "description": description}
    form = {"type": "object", "properties": {field: schema}, "required": [field]}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": form}}}}


# The request body of both single-image endpoints, read by app/http/uploads.py.
IMAGE_BODY = one_file_body(IMAGE_FIELD, f"The image: {', '.join(SUPPORTED_FORMATS)}.")


def with_text_field(body: dict[str, Any], field: str, description: str) -> dict[str, Any]:
    """`body` with one more optional text field in its multipart form."""
    form = body["requestBody"]["content"]["multipart/form-data"]["schema"]
    properties = {**form["properties"], field: {"type": "string", "description": description}}
    schema = {**form, "properties": properties}
    return {"requestBody": {**body["requestBody"], "content": {"multipart/form-data": {"schema": schema}}}}
