"""Response bodies of the API (the OpenAPI docs are generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `unsupported_image`.")
    message: str = Field(description="Human-readable reason.")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Prediction(BaseModel):
    label: str
    probability: float = Field(ge=0.0, le=1.0)


class ComponentPrediction(BaseModel):
    index: int = Field(ge=0, description="The class id within its head (the manifest's label order).")
    label: str
    probability: float = Field(ge=0.0, le=1.0)


class ModelRef(BaseModel):
    name: str
    version: str


class Timing(BaseModel):
    decode: float
    preprocess: float
    queue: float | None = Field(
        default=None,
        description="Time the input waited for its batch's model call (only with dynamic batching on).",
    )
    inference: float = Field(description="The model call (shared by every input of its batch).")
    total: float


class Preview(BaseModel):
    png_base64: str = Field(
        description="The image the model received (after the K-means ink/paper step, cropping, "
        "centring and blur), as a base64 PNG: 8-bit grey, white ink on black, `width`×`height` pixels."
    )
    width: int = Field(ge=1, description="The model's input width in pixels, e.g. 28.")
    height: int = Field(ge=1, description="The model's input height in pixels.")
    ink: Literal["white_on_black"] = Field(
        default="white_on_black", description="Polarity of the picture: the model's own, ink = 1 = white."
    )


class PredictResponse(BaseModel):
    task: str
    model: ModelRef
    predictions: list[Prediction] = Field(
        description="Top-k answers, best first: the first head's labels, or whole answers composed "
        "from all heads when the model's manifest names a `composition` (e.g. Bengali graphemes, "
        "each with the product of its components' probabilities)."
    )
    heads: dict[str, list[Prediction]] | None = Field(
        default=None,
        description="Top-k of every head; only for models with more than one head and no composition.",
    )
    components: dict[str, list[ComponentPrediction]] | None = Field(
        default=None, description="Top-k of every head with class ids; only for composing models."
    )
    timing_ms: Timing
    preview: Preview | None = Field(
        default=None, description="What the model saw; only when asked with `preview=true`."
    )


class BatchError(ErrorDetail):
    status: int = Field(description="The HTTP status this file alone would have been answered with.")


class BatchItem(BaseModel):
    filename: str | None = Field(default=None, description="The part's file name, as sent.")
    result: PredictResponse | None = Field(default=None, description="The answer, when the file was usable.")
    error: BatchError | None = Field(default=None, description="Why not, otherwise.")


class BatchResponse(BaseModel):
    task: str
    results: list[BatchItem] = Field(description="One item per uploaded file, in upload order.")


class LiveResponse(BaseModel):
    status: Literal["alive"] = "alive"


class ReadyResponse(BaseModel):
    status: Literal["ready"] = "ready"
    tasks: list[str]
    failed: dict[str, str] = Field(
        default_factory=dict, description="Tasks whose model was found but could not be loaded, and why."
    )


class HeadInfo(BaseModel):
    name: str
    output: str
    num_labels: int


class InputInfo(BaseModel):
    name: str
    shape: list[int | None]
    dtype: str


class ModelInfo(BaseModel):
    name: str
    task: str
    version: str
    architecture: str
    created: datetime
    onnx_sha256: str = Field(description="Checksum of the ONNX file actually served.")
    variant: str = Field(description="`float`, or the quantised variant served (`int8`).")
    providers: list[str]
    input: InputInfo
    heads: list[HeadInfo]
    metrics: dict[str, float]


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
