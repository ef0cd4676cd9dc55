"""Whether this process can serve: the one readiness check of `/health/ready` and v2's server
readiness alike."""

from __future__ import annotations

from app.config import Settings
from app.errors import ModelNotReady
from app.metrics import Metrics
from app.runtime.registry import ModelRegistry


def check_ready(registry: ModelRegistry, metrics: Metrics, settings: Settings) -> None:
    """ModelNotReady, saying why, until the models are loaded (at least one) in every worker."""
    if not registry.loaded:
        raise ModelNotReady("models are still loading")
    if not registry.models:
        failed = "; ".join(f"{task}: {why}" for task, why in sorted(registry.failed.items()))
        raise ModelNotReady("no model is loaded" + (f" (failed: {failed})" if failed else ""))
    # Ready only once every worker process is: connections made before a worker listens all
    # go to the others, and a client's keep-alive connection stays where it landed.
    serving = metrics.serving_processes()
    if serving is not None and serving < settings.workers:
        raise ModelNotReady(f"{serving} of {settings.workers} worker processes have loaded their models")
