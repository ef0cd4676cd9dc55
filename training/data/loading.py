"""A config's task data, loaded once: training, export, evaluation, quantisation and packing all
start here."""

from __future__ import annotations

from dataclasses import replace

from training.config import TrainConfig
from training.data.tasks import Split, TaskData, load_task


def limit(split: Split, n: int) -> Split:
    """The first `n` samples (all of them when `n` ≤ 0): the configs' `limit_train` / `limit_val`."""
    if n <= 0 or n >= len(split):
        return split
    return Split(split.images[:n], {h: t[:n] for h, t in split.targets.items()})


def load_data(cfg: TrainConfig, evaluation_only: bool = False) -> TaskData:
    """The config's task data; `evaluation_only` lets a task that can skip building its training split
    (export and evaluation measure only validation and tests)."""
    data = load_task(cfg.task, cfg.data_path, cfg.val_fraction, cfg.seed, evaluation_only, **cfg.task_kwargs)
    return replace(data, train=limit(data.train, cfg.limit_train), val=limit(data.val, cfg.limit_val))
