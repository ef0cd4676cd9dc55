"""Augmentation of preprocessed canvases (albumentations): handwriting-like geometric and stroke variation."""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    rotate: float = 12.0
    shear: float = 12.0
    scale: tuple[float, float] = (0.85, 1.1)
    translate: float = 0.06
    affine_p: float = 0.9
    elastic_p: float = 0.3
    morph_p: float = 0.3
    blur_p: float = 0.2
    dropout_p: float = 0.2


def build_augment(cfg: AugmentConfig, seed: int | None = None) -> A.Compose:
    return A.Compose(
        [
            A.Affine(
                scale=cfg.scale,
                translate_percent=(-cfg.translate, cfg.translate),
                rotate=(-cfg.rotate, cfg.rotate),
                shear=(-cfg.shear, cfg.shear),
                p=cfg.affine_p,
            ),
            A.ElasticTransform(alpha=8, sigma=3, p=cfg.elastic_p),
            A.OneOf(
                [
                    A.Morphological(scale=(2, 2), operation="dilation"),
                    A.Morphological(scale=(2, 2), operation="erosion"),
                ],
                p=cfg.morph_p,
            ),
            A.GaussianBlur(sigma_limit=(0.3, 0.9), p=cfg.blur_p),
            A.CoarseDropout(
                num_holes_range=(1, 2), hole_height_range=(3, 6), hole_width_range=(3, 6), p=cfg.dropout_p
            ),
        ],
        seed=seed,
    )


class CanvasAugment:
    """Callable canvas → canvas, picklable for DataLoader workers."""

    def __init__(self, cfg: AugmentConfig, seed: int | None = None) -> None:
        self.pipeline = build_augment(cfg, seed)

    def __call__(self, canvas: np.ndarray) -> np.ndarray:
        out = self.pipeline(image=canvas)["image"]
        return np.clip(out, 0.0, 1.0).astype(np.float32)
