"""Operational endpoints: liveness, readiness, Prometheus metrics.

`async def` on purpose: they do no blocking work, so they answer even when every threadpool
worker is busy with predictions.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.errors import ModelNotReady
from app.routers import MetricsDep, RegistryDep, error_responses
from app.schemas import LiveResponse, ReadyResponse

router = APIRouter(tags=["health"])


@router.get("/health/live", response_model=LiveResponse, summary="The process is up")
async def live() -> LiveResponse:
    return LiveResponse()


@router.get(
    "/health/ready",
    response_model=ReadyResponse,
    responses=error_responses(503),
    summary="Models are loaded and requests can be served",
)
async def ready(registry: RegistryDep) -> ReadyResponse:
    if not registry.loaded:
        raise ModelNotReady("models are still loading")
    if not registry.models:
        failed = "; ".join(f"{task}: {why}" for task, why in sorted(registry.failed.items()))
        raise ModelNotReady("no model is loaded" + (f" (failed: {failed})" if failed else ""))
    return ReadyResponse(tasks=registry.tasks, failed=dict(registry.failed))


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(content=metrics.render(), media_type=metrics.content_type)
