"""Operational endpoints: liveness, readiness, Prometheus metrics.

`async def` on purpose: they do no blocking work, so they answer even when every threadpool
worker is busy with predictions.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import MetricsDep, RegistryDep, SettingsDep, error_responses
from app.config import Settings
from app.errors import ModelNotReady
from app.metrics import Metrics
from app.schemas.predict import LiveResponse, ReadyResponse

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
    if not registry.loaded:
        raise ModelNotReady("models are still loading")
    if not registry.models:
        failed = "; ".join(f"{task}: {why}" for task, why in sorted(registry.failed.items()))
        raise ModelNotReady("no model is loaded" + (f" (failed: {failed})" if failed else ""))
    check_every_worker_serves(metrics, settings)
    return ReadyResponse(tasks=registry.tasks, failed=dict(registry.failed))


def check_every_worker_serves(metrics: Metrics, settings: Settings) -> None:
    """Ready only once every worker process is: connections made before a worker listens all
    go to the others, and a client's keep-alive connection stays where it landed."""
    serving = metrics.serving_processes()
    if serving is not None and serving < settings.workers:
        raise ModelNotReady(f"{serving} of {settings.workers} worker processes have loaded their models")


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(content=metrics.render(), media_type=metrics.content_type)
