"""`python -m training pack`: a config's task data → preprocessed canvases in pack folders.

The service's own preprocessing runs once per sample here (in parallel over the CPU's cores), so the
GPU machine trains on exactly the canvases the service would make of these images. The training
split is spread evenly over the given folders, so each stays under a transfer limit.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np

from contract.preprocessing import PreprocessConfig
from training.config import TrainConfig
from training.data.datasets import render_canvases
from training.data.loading import load_data
from training.data.tasks import Split
from training.pack_format import copy_split, write_meta, write_split

# Pack split name → the task's split it is made of (None: TaskData.val).
SELECTION_SPLITS = {"val": None, "banglalekha_val": "banglalekha_heldout_writers"}
SELECTION_LIMIT = 6000  # selection splits are subsampled (seeded) to this many samples per split
# A GPU machine call carries at most 64 MiB (67 MB), the repository's working tree included (about
# 24 MB with its models): a folder over this leaves too little room. More --out folders make each
# one smaller.
FOLDER_LIMIT_BYTES = 40_000_000

_CONFIG: PreprocessConfig | None = None


def _canvases(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    assert _CONFIG is not None
    return render_canvases(images, _CONFIG)


def parallel_canvases(
    images: np.ndarray, cfg: PreprocessConfig, workers: int
) -> tuple[np.ndarray, np.ndarray]:
    """render_canvases over the CPU's cores: (canvases, indices of the images with ink)."""
    global _CONFIG
    _CONFIG = cfg
    chunks = np.array_split(np.arange(len(images)), max(1, workers * 8))
    if workers <= 1 or len(images) < 1000:
        return render_canvases(images, cfg)
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        results = pool.map(_canvases, [images[c] for c in chunks if len(c)])
    canvases = np.concatenate([r[0] for r in results])
    kept = np.concatenate([c[r[1]] for c, r in zip([c for c in chunks if len(c)], results, strict=True)])
    return canvases, kept


def subsample(split: Split, limit: int, seed: int) -> Split:
    if len(split) <= limit:
        return split
    index = np.sort(np.random.default_rng(seed).permutation(len(split))[:limit])
    return Split(split.images[index], {h: t[index] for h, t in split.targets.items()})


def pack_split(folder: Path, name: str, split: Split, cfg: PreprocessConfig, workers: int) -> int:
    canvases, kept = parallel_canvases(split.images, cfg, workers)
    write_split(folder, name, canvases, {h: t[kept] for h, t in split.targets.items()}, workers)
    return len(kept)


def build_pack(cfg: TrainConfig, folders: list[Path], workers: int | None = None) -> dict[str, int]:
    """Write the config's data as a pack over `folders` (each holds the meta and the selection
    splits); return the samples per written split."""
    workers = workers or os.cpu_count() or 1
    data = load_data(cfg)
    counts: dict[str, int] = {}
    for name, source in SELECTION_SPLITS.items():
        split = data.val if source is None else data.tests.get(source)
        if split is not None:
            counts[name] = pack_split(
                folders[0], name, subsample(split, SELECTION_LIMIT, cfg.seed), cfg.preprocess, workers
            )
            for folder in folders[1:]:  # every folder trains on its own (a lost part costs data only)
                copy_split(folders[0], folder, name)
    parts = np.array_split(np.arange(len(data.train)), len(folders))
    for i, (folder, index) in enumerate(zip(folders, parts, strict=True)):
        part = Split(data.train.images[index], {h: t[index] for h, t in data.train.targets.items()})
        counts[f"train{i}"] = pack_split(folder, f"train{i}", part, cfg.preprocess, workers)
    meta = {
        "config": cfg.to_dict(),
        "heads": {h: list(labels) for h, labels in data.heads.items()},
        "provenance": data.provenance,
        "composition": data.composition,
        "counts": counts,
    }
    for folder in folders:
        write_meta(folder, meta)
    for folder in folders:
        print(folder_report(folder))
    return counts


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir() if path.is_file())


def folder_report(folder: Path, limit: int = FOLDER_LIMIT_BYTES) -> str:
    """e.g. "runs/pack/a: 36.2 MB", with a warning when over the transfer limit."""
    size = folder_bytes(folder)
    over = f" — over {limit / 1e6:.0f} MB: build with more --out folders" if size > limit else ""
    return f"{folder}: {size / 1e6:.1f} MB{over}"
