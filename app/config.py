"""Every knob of the service, read from `HWR_*` environment variables and validated at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The repository's exported artifacts; resolved from the package, not the working directory.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HWR_", extra="ignore", frozen=True)

    model_dir: Path = DEFAULT_MODEL_DIR
    # Caps on what a client may send: raw bytes, decoded pixels, and the longer side.
    max_upload_bytes: int = Field(default=10_000_000, gt=0)
    max_pixels: int = Field(default=40_000_000, gt=0)
    max_side: int = Field(default=20_000, gt=0)
    default_k: int = Field(default=5, ge=1)
    # k is also capped per request by the number of labels of the model's first head.
    max_k: int = Field(default=50, ge=1)
    # 0 leaves ONNX Runtime's own default (one thread per physical core).
    ort_intra_op_threads: int = Field(default=0, ge=0)
    log_level: Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"] = "INFO"
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _default_k_within_max(self) -> Settings:
        if self.default_k > self.max_k:
            raise ValueError(f"default_k ({self.default_k}) must not exceed max_k ({self.max_k})")
        return self
