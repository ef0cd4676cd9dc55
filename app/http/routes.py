"""Which paths run a model: the one table read by the bearer token and admission (`guarded`), the
request counter (`endpoint_of`), v2's model lookup (`ModelRegistry.named`) and the routes
themselves (their path templates).

A guarded prefix covers every path under it, routed or not, so an unauthenticated or
over-the-limit request is refused before anything else is done, whatever it asks for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.runtime.registry import ModelRegistry

PREDICT, PREDICT_BATCH, READ, V2_INFER = ENDPOINTS = ("predict", "predict_batch", "read", "v2_infer")
UNKNOWN = "unknown"

PREDICT_PATH = "/predict/{task}"
PREDICT_BATCH_PATH = "/predict/{task}/batch"
READ_PATH = "/read/{task}"
V2_PREFIX = "/v2"
V2_INFER_PATH = "/models/{name}/infer"  # under V2_PREFIX
V2_INFER_VERSION_PATH = "/models/{name}/versions/{version}/infer"


@dataclass(frozen=True)
class Guarded:
    """Every path under `prefix` costs real work: token and admission apply. `endpoint`: how the
    request counter names a path under it that no counted route matches (None: not counted)."""

    prefix: str
    endpoint: str | None


GUARDED = (
    Guarded("/predict/", PREDICT),
    Guarded("/read/", READ),
    Guarded(V2_PREFIX + "/models/", None),  # infer and metadata; v2 health stays open
    Guarded("/writers", None),  # writer enrolment
    Guarded("/identify/", None),  # writer identification
)
GUARDED_PREFIXES = tuple(g.prefix for g in GUARDED)

# Route template → the request counter's endpoint. `{task}` names a model by its task, `{name}`
# by its manifest name or its task (the v2 protocol's way).
COUNTED = {
    PREDICT_PATH: PREDICT,
    PREDICT_BATCH_PATH: PREDICT_BATCH,
    READ_PATH: READ,
    V2_PREFIX + V2_INFER_PATH: V2_INFER,
    V2_PREFIX + V2_INFER_VERSION_PATH: V2_INFER,
}


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]*)" for i, part in enumerate(parts))
    return re.compile(regex + "$")


_COUNTED = [(_pattern(template), endpoint) for template, endpoint in COUNTED.items()]


def guarded(path: str) -> bool:
    return path.startswith(GUARDED_PREFIXES)


def endpoint_of(path: str, registry: ModelRegistry) -> tuple[str, str] | None:
    """(endpoint, task label) of a request to an endpoint that runs a model; None for any other
    path (v2 metadata and readiness included: they cost nothing). The label is a loaded task or
    UNKNOWN, never the raw path segment."""
    for pattern, endpoint in _COUNTED:
        match = pattern.match(path)
        if match is not None:
            names = match.groupdict()
            model = registry.models.get(names["task"]) if "task" in names else registry.named(names["name"])
            return endpoint, model.manifest.task if model is not None else UNKNOWN
    for g in GUARDED:
        if g.endpoint is not None and path.startswith(g.prefix):
            return g.endpoint, UNKNOWN
    return None
