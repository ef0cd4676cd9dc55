"""The train↔serve contract: `models/<name>/manifest.json`.

Training writes it at export, serving validates it at start-up with this same model. Everything
the service needs to know about a model lives here — it keeps no label list or parameter of its own.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract import graphemes
from contract.preprocessing import PreprocessConfig

MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContractFile(_Strict):
    """A model's JSON contract, read from and written to `FILE` in its directory."""

    FILE: ClassVar[str]

    @classmethod
    def load(cls, model_dir: Path) -> Self:
        return cls.model_validate_json((model_dir / cls.FILE).read_text(encoding="utf-8"))

    def save(self, model_dir: Path) -> Path:
        path = model_dir / self.FILE
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path


def check_input_matches(input_spec: InputSpec, preprocessing: PreprocessConfig) -> None:
    """The model's input must be the canvas its preprocessing draws: N × 1 × size × size."""
    size = preprocessing.canvas_size
    if tuple(input_spec.shape[1:]) != (1, size, size):
        raise ValueError(f"input shape {input_spec.shape} does not match canvas {size}×{size}")


class OnnxFile(_Strict):
    file: str = "model.onnx"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ModelVariant(_Strict):
    """An alternative ONNX file for the same contract (same input, outputs and labels), e.g. int8.

    Written by `python -m training quantize`; `delta` is variant − float, both scored in the same
    run on the same samples, so a drift in preprocessing since export cannot hide in it.
    """

    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    metrics: dict[str, float] = Field(default_factory=dict)
    delta: dict[str, float] = Field(default_factory=dict)
    # The validation metric the tolerance is judged on (the one that picked the training epoch).
    primary_metric: str
    max_drop_points: float = Field(ge=0)
    within_tolerance: bool
    calibration_samples: int = Field(default=0, ge=0)
    command: str = ""


class InputSpec(_Strict):
    name: str
    # N × C × H × W; N is dynamic (None).
    shape: tuple[int | None, int, int, int]
    dtype: str = "float32"


class Head(_Strict):
    name: str
    output: str  # the ONNX output carrying this head's logits
    labels: list[str] = Field(min_length=2)

    @model_validator(mode="after")
    def _unique_labels(self) -> Head:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"head {self.name!r} has duplicate labels")
        return self


class DataSource(_Strict):
    name: str
    path: str
    split: str
    samples: int
    license: str = ""
    notes: str = ""


class TrainingInfo(_Strict):
    command: str  # the training command, as typed
    export_command: str = ""  # when the export ran separately from training
    config: dict[str, Any]
    git_commit: str = ""
    torch_version: str = ""
    device: str = ""
    duration_s: float = 0.0


class Manifest(ContractFile):
    FILE = MANIFEST_FILE

    schema_version: int = SCHEMA_VERSION
    name: str
    task: str
    version: str
    created: datetime
    architecture: str
    onnx: OnnxFile
    input: InputSpec
    preprocessing: PreprocessConfig
    heads: list[Head] = Field(min_length=1)
    # How the heads become the answer. None: the first head's top-k. "bengali_grapheme": whole
    # graphemes composed from the root, vowel-sign and consonant-sign heads (contract/graphemes.py).
    composition: Literal["bengali_grapheme"] | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    data: list[DataSource] = Field(default_factory=list)
    training: TrainingInfo
    # Optional alternatives to `onnx`, by kind ("int8"); manifests written before them have none.
    variants: dict[str, ModelVariant] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _variants_are_other_files(self) -> Manifest:
        for kind, variant in self.variants.items():
            if variant.file == self.onnx.file:
                raise ValueError(f"variant {kind!r} must not reuse the float file {self.onnx.file!r}")
        return self

    @model_validator(mode="after")
    def _input_matches_preprocessing(self) -> Manifest:
        check_input_matches(self.input, self.preprocessing)
        return self

    @model_validator(mode="after")
    def _composition_has_its_heads(self) -> Manifest:
        names = {head.name for head in self.heads}
        if self.composition == "bengali_grapheme" and not set(graphemes.HEADS) <= names:
            raise ValueError(
                f"composition {self.composition!r} needs heads {graphemes.HEADS}: {sorted(names)}"
            )
        return self


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
