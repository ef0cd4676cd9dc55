"""The writer-embedding model's contract: `models/writers/writer_manifest.json`.

A file of its own, not `manifest.json`: the classification registry loads only directories holding
a `manifest.json`, so it never mistakes this model for a classifier. Training writes it at export
(training/writers/export.py) with this same schema; the preprocessing is the service's own.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.manifest import ContractFile, InputSpec, OnnxFile, TrainingInfo, check_input_matches
from contract.preprocessing import PreprocessConfig
from contract.writer_decision import OpenSetCalibration

WRITER_MANIFEST_FILE = "writer_manifest.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbeddingSpec(_Strict):
    output: str = "embedding"  # the ONNX output: N × dim, L2-normalised by the graph
    dim: int = Field(ge=2)


class WriterManifest(ContractFile):
    FILE = WRITER_MANIFEST_FILE

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
    # verification EER threshold measured at export on validation writers, one query character.
    threshold: float = Field(default=0.5, ge=-1.0, le=1.0)
    # The same, measured per number of query characters ("1", "5", "20"): a mean over more
    # characters scores higher, for the right writer and the wrong ones alike, so one threshold
    # would call almost every multi-character query known. Empty in older manifests.
    thresholds_by_query: dict[int, float] = Field(default_factory=dict)
    # The open-set operating point: thresholds per (enrolled, query) character count measured on
    # writers the embedder never trained on (contract/writer_decision.py). When present it decides;
    # `threshold` and `thresholds_by_query` stay for older readers.
    open_set: OpenSetCalibration | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    training: TrainingInfo

    @model_validator(mode="after")
    def _input_matches_preprocessing(self) -> WriterManifest:
        check_input_matches(self.input, self.preprocessing)
        return self

    def threshold_for(self, characters: int, enrolled: int | None = None) -> float:
        """The threshold for a query of this many characters against a writer enrolled with
        `enrolled` characters: the open-set calibration's when there is one (its default enrolment
        size when `enrolled` is None); else interpolated in log(count) between the per-query
        thresholds, held at the ends; else the single `threshold`."""
        if self.open_set is not None:
            return self.open_set.threshold(characters, enrolled)
        if not self.thresholds_by_query:
            return self.threshold
        counts = sorted(self.thresholds_by_query)
        values = [self.thresholds_by_query[c] for c in counts]
        return float(np.interp(np.log(max(characters, 1)), np.log(counts), values))
