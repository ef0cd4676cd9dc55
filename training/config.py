"""Experiment configuration: one YAML file per experiment, CLI overrides, resolved copy saved per run."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ConfigDict, ValidationError
from pydantic.dataclasses import dataclass

from contract.preprocessing import PreprocessConfig
from training.augment import AugmentConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def default_data_dir() -> Path:
    """`HWR_DATA_DIR`, else ../shared/data beside the checkout."""
    return Path(os.environ.get("HWR_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


# Every experiment config is validated against its annotations when it is built (from YAML, `--set`
# overrides, a checkpoint, or in code): YAML reads `3e-3` (no dot) as a string and `epochs=ten` as
# one too, and either should fail here with the key's name, not deep inside training. A key the
# class does not declare (a typo, at any depth) is refused rather than silently ignored. Numbers
# given for a text field (`name=7`) are taken as text.
STRICT_CONFIG = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


@dataclass(config=STRICT_CONFIG)
class TrainConfig:
    name: str = "letters"
    task: str = "letter"
    task_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to the task's data builder
    model: str = "char_resnet"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    data_dir: str = ""  # empty: default_data_dir()
    val_fraction: float = 0.15
    seed: int = 0
    epochs: int = 30
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    ema_decay: float = 0.999
    head_weights: dict[str, float] = field(default_factory=dict)
    loss: str = "ce"  # ce | ohem (training.losses)
    ohem_rate: float = 0.5  # OHEM: the hardest share of each batch that is kept
    # Batch-level mixing (training.mixing): any of cutmix, mixup; one per batch, chosen uniformly,
    # applied with probability mix_p, λ ~ Beta(mix_alpha, mix_alpha). Per-image Cutout is augment.cutout.
    mix: tuple[str, ...] = ()
    mix_alpha: float = 0.4
    mix_p: float = 1.0
    # Validation metric that picks the best epoch; empty: the first head's top-1. "score" is the
    # head-weighted mean of macro recalls (the Bengali.AI score with head weights 2/1/1).
    select_metric: str = ""
    photo_variants: int = 0  # photo-like re-renderings per training image (training.photo_like)
    num_workers: int = 0
    threads: int = 0  # torch CPU threads; 0 = torch default
    # CUDA only (training.hardware); CPU always runs float32, contiguous, eager.
    amp: bool = True  # bfloat16 where supported, else float16 with loss scaling
    channels_last: bool = True
    compile: bool = False  # torch.compile the training model
    limit_train: int = 0  # >0: use only this many training samples (smoke runs)
    limit_val: int = 0
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # The GPU path from a pack (training.packed): batch_size, downsample (pool the pack's canvases
    # by this factor), augment (GpuAugment's ranges).
    packed: dict[str, Any] = field(default_factory=dict)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir) if self.data_dir else default_data_dir()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: str) -> Any:
    # YAML for lists, mappings, booleans and null; the field's type then decides what a number is.
    return yaml.safe_load(value)


def build_config(cls: type[T], values: dict[str, Any]) -> T:
    """`cls(**values)`, its validation errors as one ValueError naming every bad key."""
    try:
        return cls(**values)
    except ValidationError as exc:
        raise ValueError(describe(cls.__name__, exc)) from None


def describe(owner: str, exc: ValidationError) -> str:
    """One line per error: `TrainConfig.epochs must be a valid integer, …; got 'ten'` or
    `TrainConfig.preprocess.nope: unknown key`."""
    lines = []
    for error in exc.errors():
        key = ".".join([owner, *(str(part) for part in error["loc"])])
        if error["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            lines.append(f"{key}: unknown key")
        else:
            message = error["msg"].replace("Input should be", "must be", 1)
            lines.append(f"{key} {message}; got {error['input']!r}")
    return "invalid config: " + "; ".join(lines)


def load_config(path: Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """YAML file (optional) plus `key=value` / `section.key=value` overrides."""
    values: dict[str, Any] = yaml.safe_load(path.read_text()) if path else {}
    return config_from_dict(apply_overrides(values or {}, overrides or []))


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`key=value` / `section.key=value` strings (values parsed as YAML) set into `values`, in place."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not key=value")
        target = values
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = _coerce(raw)
    return values


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `update` merged in, sections (dicts) key by key; `None` drops a key, so the
    field falls back to its default (e.g. `model_kwargs: null` before another model's kwargs)."""
    out = dict(base)
    for key, value in update.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    return build_config(TrainConfig, values)


def save_config(cfg: TrainConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(plain(cfg.to_dict()), sort_keys=False))


def plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
