"""Operational endpoints: liveness, readiness, Prometheus metrics.

`async def` on purpose: they do no blocking work, so they answer even when every threadpool
worker is busy with predictions.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import MetricsDep, RegistryDep, SettingsDep, error_responses
from app.schemas.predict import LiveResponse, ReadyResponse
from app.service.readiness import check_ready

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
async def ready(registry: RegistryDep, metrics: MetricsDep, settings: SettingsDep) -> ReadyResponse:
    check_ready(registry, metrics, settings)
    return ReadyResponse(tasks=registry.tasks, failed=dict(registry.failed))


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(content=metrics.render(), media_type=metrics.content_type)
