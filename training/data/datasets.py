"""Torch datasets over images run once through the service's own preprocessing."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from app.preprocessing import NoInkError, PreprocessConfig, normalise, render_canvas
from training.data.tasks import Split

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


class CanvasDataset(Dataset):
    """Preprocessing runs once at construction (deterministic); augmentation runs per item."""

    def __init__(self, split: Split, cfg: PreprocessConfig, transform: Transform | None = None) -> None:
        self.cfg = cfg
        self.transform = transform
        self.canvases, kept = render_canvases(split.images, cfg)
        self.dropped = len(split) - len(kept)
        self.targets = {head: torch.as_tensor(t[kept]) for head, t in split.targets.items()}

    def __len__(self) -> int:
        return len(self.canvases)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        canvas = self.canvases[index]
        if self.transform is not None:
            canvas = self.transform(canvas)
        x = torch.from_numpy(normalise(canvas, self.cfg))
        return x, {head: t[index] for head, t in self.targets.items()}
