"""A task's data preprocessed once into a compact folder ("pack") that a GPU machine trains from.

The service's preprocessing (contract.preprocessing.render_canvas) runs here, once per sample, on the CPU
that built the data; the pack holds the resulting canvases quantised to `LEVELS` grey levels and
LZMA-compressed, plus the targets, heads and the training config. A GPU machine then needs only
numpy, lzma and torch: no fonts, no shaping library, no source data set. The training split may be
spread over several folders (each under a transfer limit); every folder holds the meta and the
selection splits too, so one folder alone still trains. `read_pack` merges the training parts.

Reading needs nothing beyond numpy and the standard library, so it runs on a bare GPU image.
"""

from __future__ import annotations

import json
import lzma
import multiprocessing
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LEVELS = 15  # canvases in [0, 1] are stored as 0..LEVELS (4 bits of grey; the model sees a blur)
META = "pack.json"


def quantise(canvases: np.ndarray) -> np.ndarray:
    return np.clip(canvases * LEVELS + 0.5, 0, LEVELS).astype(np.uint8)


def dequantise(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32) / LEVELS


def _compress(chunk: bytes) -> bytes:
    return lzma.compress(chunk, preset=9)


def compress(raw: bytes, workers: int = 1, chunk: int = 32 << 20) -> bytes:
    """LZMA in independent streams of `chunk` bytes, compressed in parallel (LZMA runs at about a
    megabyte a second); lzma.decompress reads the concatenated streams back as one."""
    pieces = [raw[i : i + chunk] for i in range(0, len(raw), chunk)] or [b""]
    if workers <= 1 or len(pieces) == 1:
        return b"".join(map(_compress, pieces))
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return b"".join(pool.map(_compress, pieces))


def write_split(
    folder: Path, name: str, canvases: np.ndarray, targets: dict[str, np.ndarray], workers: int = 1
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.images.xz").write_bytes(compress(quantise(canvases).tobytes(), workers))
    small = {head: t.astype(np.int16) for head, t in targets.items()}  # class ids and IGNORE (-1)
    np.savez_compressed(folder / f"{name}.targets.npz", shape=np.array(canvases.shape), **small)


def copy_split(source: Path, target: Path, name: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for suffix in (".images.xz", ".targets.npz"):
        shutil.copyfile(source / f"{name}{suffix}", target / f"{name}{suffix}")


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / META).write_text(json.dumps(meta, indent=1, ensure_ascii=False))


@dataclass
class PackSplit:
    images: np.ndarray  # N×S×S uint8, 0..LEVELS
    targets: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.images)


def read_split(folder: Path, name: str) -> PackSplit:
    with np.load(folder / f"{name}.targets.npz") as data:
        shape = tuple(int(v) for v in data["shape"])
        targets = {k: data[k].astype(np.int64) for k in data.files if k != "shape"}
    raw = lzma.decompress((folder / f"{name}.images.xz").read_bytes())
    return PackSplit(np.frombuffer(raw, np.uint8).reshape(shape), targets)


def read_pack(folders: list[Path]) -> tuple[dict[str, Any], dict[str, PackSplit]]:
    """The meta of the first folder holding one, and every split found: `train*` parts are merged
    into `train`; a folder that is missing is skipped with a note (a part lost in transfer)."""
    meta: dict[str, Any] = {}
    splits: dict[str, list[PackSplit]] = {}
    for folder in folders:
        if not folder.is_dir():
            print(f"pack folder {folder} is missing: training without it")
            continue
        if not meta and (folder / META).exists():
            meta = json.loads((folder / META).read_text())
        for path in sorted(folder.glob("*.images.xz")):
            name = path.name.removesuffix(".images.xz")
            key = "train" if name.startswith("train") else name
            if key == "train" or key not in splits:  # other splits are copied into every folder
                splits.setdefault(key, []).append(read_split(folder, name))
    if not meta:
        raise FileNotFoundError(f"no {META} in {', '.join(map(str, folders))}")
    merged = {
        key: PackSplit(
            np.concatenate([p.images for p in parts]),
            {h: np.concatenate([p.targets[h] for p in parts]) for h in parts[0].targets},
        )
        for key, parts in splits.items()
    }
    return meta, merged
