"""A writer-identification experiment: one YAML file (training/configs/writers_*.yaml) + `--set` overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import field
from pathlib import Path
from typing import Any

import yaml
from pydantic.dataclasses import dataclass

from contract.preprocessing import PreprocessConfig
from training.config import STRICT_CONFIG, apply_overrides, build_config, default_data_dir, plain


# Validated like TrainConfig (training/config.py): types from the annotations, unknown keys refused.
@dataclass(config=STRICT_CONFIG)
class WriterConfig:
    name: str = "writers_closed_femnist"
    source: str = "femnist"  # femnist | iam
    data_dir: str = ""  # empty: default_data_dir() (FEMNIST at <data_dir>/femnist/femnist.npz)
    iam_dir: str = ""  # IAM root: forms_for_parsing.txt and sentences/
    seed: int = 0
    # Closed set: the writers with the most samples, each writer's samples split train/val/test.
    top_writers: int = 50
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    # Open set: the share of writers trained on and used to pick the threshold; the rest are held out.
    train_writers: float = 0.7
    val_writers: float = 0.1
    # FEMNIST input: "service" runs each character through the service's preprocessing (what the
    # API will see); "raw" feeds the 28×28 scan as is (keeps size and stroke width, writer cues).
    input: str = "service"
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    # IAM: sentence images resized to this height (aspect kept), then square crops of this side.
    iam_height: int = 113
    crop: int = 113
    crops_per_image: int = 10  # random crops per training image; evaluation uses sequential crops
    model: str = "cnn3"  # cnn3 (closed) | embedding (open)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    embedding_dim: int = 128
    arcface_scale: float = 30.0
    arcface_margin: float = 0.3
    # Open set: the service compares the mean direction of several characters, so besides each
    # character the loss also scores the mean of `group_size` characters of one writer (weight
    # `group_weight`); batches are then made of such groups. 1: single characters only.
    group_size: int = 1
    group_weight: float = 1.0
    # Random translation of each training input by up to this many pixels (padding with paper):
    # where a character sits on the canvas says nothing about its writer. 0: none.
    shift: int = 0
    # Open set: more hands to learn from. "banglalekha": BanglaLekha-Isolated's 1,989 writers join
    # the training writers as extra ArcFace classes (at most `extra_per_writer` characters each,
    # 0: all); validation and held-out writers stay FEMNIST's, so the figures stay comparable.
    extra_writers: str = ""
    extra_per_writer: int = 0
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    threads: int = 0
    limit_writers: int = 0  # >0: only this many writers (smoke runs)
    limit_per_writer: int = 0  # >0: at most this many samples per writer (smoke runs)
    aggregate: tuple[int, ...] = (5, 20)  # closed set: characters of one writer judged together
    # Open set: the validation cell (enrolled, query characters) whose top-1 picks the epoch.
    select: tuple[int, int] = (5, 1)
    enrol: tuple[int, ...] = (1, 5, 10, 20)  # open set: characters enrolled per writer
    query: tuple[int, ...] = (1, 5, 20)  # open set: characters per identification

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir) if self.data_dir else default_data_dir()

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))


def load_writer_config(path: Path | None, overrides: list[str] | None = None) -> WriterConfig:
    values: dict[str, Any] = yaml.safe_load(path.read_text()) if path else {}
    return build_config(WriterConfig, apply_overrides(values or {}, overrides or []))
