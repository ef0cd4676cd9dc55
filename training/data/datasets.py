"""Torch datasets over images run once through the service's own preprocessing."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from contract.preprocessing import NoInkError, PreprocessConfig, normalise, render_canvas
from training.data.tasks import Split
from training.photo_like import photo_like

Transform = Callable[[np.ndarray], np.ndarray]


def render_canvases(images: np.ndarray, cfg: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    """Canvases (N×S×S float32 in [0, 1]) and the indices of the images that had ink."""
    canvases, kept = [], []
    for i, image in enumerate(images):
        try:
            canvases.append(render_canvas(image, cfg))
        except NoInkError:
            continue
        kept.append(i)
    size = cfg.canvas_size
    stacked = np.stack(canvases) if canvases else np.zeros((0, size, size), np.float32)
    return stacked, np.asarray(kept, dtype=np.int64)


def render_photo_variants(images: list[np.ndarray], cfg: PreprocessConfig, seed: int) -> np.ndarray:
    """One photo-like re-rendering per image, preprocessed; the scan's canvas where it fails."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(images), cfg.canvas_size, cfg.canvas_size), np.float32)
    for i, image in enumerate(images):
        try:
            out[i] = render_canvas(photo_like(image, rng, cfg), cfg)
        except NoInkError:
            out[i] = render_canvas(image, cfg)
    return out


class CanvasDataset(Dataset):
    """Preprocessing runs once at construction (deterministic); augmentation runs per item.

    With `photo_variants` > 0, each image also gets that many photo-like re-renderings
    (training.photo_like), preprocessed once too; an item is then the scan or one of its variants
    at random.
    """

    def __init__(
        self,
        split: Split,
        cfg: PreprocessConfig,
        transform: Transform | None = None,
        photo_variants: int = 0,
        seed: int = 0,
    ) -> None:
        self.cfg = cfg
        self.transform = transform
        canvases, kept = render_canvases(split.images, cfg)
        self.dropped = len(split) - len(kept)
        self.targets = {head: torch.as_tensor(t[kept]) for head, t in split.targets.items()}
        self.views = [canvases] + [
            render_photo_variants([split.images[i] for i in kept], cfg, seed + v)
            for v in range(photo_variants)
        ]

    @property
    def canvases(self) -> np.ndarray:
        """The scans' canvases (the un-augmented view)."""
        return self.views[0]

    def __len__(self) -> int:
        return len(self.views[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # torch's generator: seeded by torch.manual_seed and differently in each DataLoader worker.
        view = int(torch.randint(len(self.views), ())) if len(self.views) > 1 else 0
        canvas = self.views[view][index]
        if self.transform is not None:
            canvas = self.transform(canvas)
        x = torch.from_numpy(normalise(canvas, self.cfg))
        return x, {head: t[index] for head, t in self.targets.items()}
