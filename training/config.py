"""Experiment configuration: one YAML file per experiment, CLI overrides, resolved copy saved per run."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from contract.preprocessing import PreprocessConfig
from training.augment import AugmentConfig

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_data_dir() -> Path:
    """`HWR_DATA_DIR`, else ../shared/data beside the checkout."""
    return Path(os.environ.get("HWR_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


@dataclass
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
    return yaml.safe_load(value)


def _build(cls: type, values: dict[str, Any]) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    kwargs = {}
    for key, value in values.items():
        nested = {"preprocess": PreprocessConfig, "augment": AugmentConfig}.get(key)
        if nested is not None and cls is TrainConfig:
            value = _build(nested, value)
        elif isinstance(value, list):
            value = tuple(value)
        annotation = known[key].type  # a string under `from __future__ import annotations`
        name = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
        kwargs[key] = _typed(cls.__name__, key, name, value)
    return cls(**kwargs)


def _typed(owner: str, key: str, annotation: str, value: Any) -> Any:
    """A number field's value as its type: YAML reads `3e-3` (no dot) as a string, and a typo such as
    `epochs=ten` should fail here, not deep inside training."""
    kind = {"float": float, "int": int}.get(annotation)
    if kind is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float | str):
        try:
            number = kind(value)
        except ValueError:
            pass
        else:
            if kind is float or float(value) == number:  # an int field takes 3 or "3", not 2.5
                return number
    raise ValueError(f"{owner}.{key} must be {annotation}, got {value!r}")


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
    return _build(TrainConfig, values)


def save_config(cfg: TrainConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(plain(cfg.to_dict()), sort_keys=False))


def plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
