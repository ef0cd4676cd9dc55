"""`GET /models`: what is loaded, straight from each model's manifest."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import RegistryDep
from app.runtime.registry import LoadedModel
from app.schemas.predict import HeadInfo, InputInfo, ModelInfo, ModelsResponse

router = APIRouter(tags=["models"])


def describe(model: LoadedModel) -> ModelInfo:
    m = model.manifest
    return ModelInfo(
        name=m.name,
        task=m.task,
        version=m.version,
        architecture=m.architecture,
        created=m.created,
        onnx_sha256=model.onnx_sha256,
        variant=model.variant,
        providers=model.providers,
        input=InputInfo(name=m.input.name, shape=list(m.input.shape), dtype=m.input.dtype),
        heads=[HeadInfo(name=h.name, output=h.output, num_labels=len(h.labels)) for h in m.heads],
        metrics=dict(m.metrics),
    )


@router.get("/models", response_model=ModelsResponse, summary="The loaded models")
async def list_models(registry: RegistryDep) -> ModelsResponse:
    return ModelsResponse(models=[describe(registry.models[task]) for task in registry.tasks])
