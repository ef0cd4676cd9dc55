"""The writer-embedding model's contract: `models/writers/writer_manifest.json`.

A file of its own, not `manifest.json`: the classification registry loads only directories holding
a `manifest.json`, so it never mistakes this model for a classifier. Training writes it at export
(training/writers/export.py) with this same schema; the preprocessing is the service's own.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.manifest import InputSpec, OnnxFile, TrainingInfo
from app.preprocessing import PreprocessConfig

WRITER_MANIFEST_FILE = "writer_manifest.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbeddingSpec(_Strict):
    output: str = "embedding"  # the ONNX output: N × dim, L2-normalised by the graph
    dim: int = Field(ge=2)


class WriterManifest(_Strict):
    schema_version: int = 1
    name: str
    task: str = "writer"
    version: str
    created: datetime
    architecture: str
    onnx: OnnxFile
    input: InputSpec
    preprocessing: PreprocessConfig
    embedding: EmbeddingSpec
    # Cosine score of a query to a writer's mean below which the answer is "unknown": the
    # verification EER threshold measured at export on held-out writers.
    threshold: float = Field(default=0.5, ge=-1.0, le=1.0)
    metrics: dict[str, float] = Field(default_factory=dict)
    training: TrainingInfo

    @model_validator(mode="after")
    def _input_matches_preprocessing(self) -> WriterManifest:
        size = self.preprocessing.canvas_size
        if tuple(self.input.shape[1:]) != (1, size, size):
            raise ValueError(f"input shape {self.input.shape} does not match canvas {size}×{size}")
        return self

    @classmethod
    def load(cls, directory: Path) -> WriterManifest:
        return cls.model_validate_json((directory / WRITER_MANIFEST_FILE).read_text(encoding="utf-8"))

    def save(self, directory: Path) -> Path:
        path = directory / WRITER_MANIFEST_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path
