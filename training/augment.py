"""Augmentation of preprocessed canvases (albumentations), per image; batch-level mixing is training.mixing.

Presets: `default` (handwriting-like geometric and stroke variation, the committed models' recipe),
`baseline` (the Bengali study's Gaussian noise + shift-scale-rotate), `none`. `cutout` adds the study's
Cutout (one hole, always) on top of any preset; `grain_p` adds uneven, pencil-like ink to `default`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import albumentations as A
import numpy as np

# The study's Cutout was one 80×80 px hole on 137×236 px images: the same share of the area on our
# square canvas is a square of side √(80²/(137·236)) ≈ 0.445 of the canvas.
SEED_CUTOUT_FRACTION = math.sqrt(80 * 80 / (137 * 236))


@dataclass(frozen=True)
class AugmentConfig:
    preset: str = "default"  # default | baseline | none
    rotate: float = 12.0
    shear: float = 12.0
    scale: tuple[float, float] = (0.85, 1.1)
    translate: float = 0.06
    affine_p: float = 0.9
    elastic_p: float = 0.3
    morph_p: float = 0.3
    blur_p: float = 0.2
    dropout_p: float = 0.2
    # Pencil and cheap phone sensors: ink of uneven darkness along the stroke. The preprocessing scales
    # ink between the paper and ink levels it finds, so this unevenness, not faintness, is what is left
    # of it on the canvas. 0 (off) in the committed recipes before it existed.
    grain_p: float = 0.0
    grain: tuple[float, float] = (0.6, 1.0)  # per-pixel factor on the ink; paper (0) stays paper
    cutout: bool = False
    cutout_fraction: float = SEED_CUTOUT_FRACTION  # hole side / canvas side


def default_transforms(cfg: AugmentConfig) -> list[A.BasicTransform]:
    return [
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
    ] + (
        [A.MultiplicativeNoise(multiplier=cfg.grain, elementwise=True, p=cfg.grain_p)] if cfg.grain_p else []
    )


def baseline_transforms(cfg: AugmentConfig) -> list[A.BasicTransform]:
    """The study's GaussNoise() + ShiftScaleRotate(0.01, 0.1, 30) at albumentations' default p = 0.5.

    ShiftScaleRotate is deprecated in albumentations 2 in favour of the equivalent Affine. The noise
    is the old default var_limit (10, 50) on 0–255 images as a std on our [0, 1] canvases.
    """
    return [
        A.GaussNoise(std_range=(math.sqrt(10) / 255, math.sqrt(50) / 255), p=0.5),
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.01, 0.01), rotate=(-30, 30), p=0.5),
    ]


PRESETS: dict[str, Callable[[AugmentConfig], list[A.BasicTransform]]] = {
    "default": default_transforms,
    "baseline": baseline_transforms,
    "none": lambda cfg: [],
}


def cutout(cfg: AugmentConfig) -> A.CoarseDropout:
    side = (cfg.cutout_fraction, cfg.cutout_fraction)
    # fill 0 is paper on an ink-high canvas; p = 1 as in the study
    return A.CoarseDropout(
        num_holes_range=(1, 1), hole_height_range=side, hole_width_range=side, fill=0, p=1.0
    )


def build_augment(cfg: AugmentConfig, seed: int | None = None) -> A.Compose:
    if cfg.preset not in PRESETS:
        raise KeyError(f"unknown augment preset {cfg.preset!r}; known: {sorted(PRESETS)}")
    transforms = PRESETS[cfg.preset](cfg) + ([cutout(cfg)] if cfg.cutout else [])
    return A.Compose(transforms, seed=seed)


class CanvasAugment:
    """Callable canvas → canvas, picklable for DataLoader workers."""

    def __init__(self, cfg: AugmentConfig, seed: int | None = None) -> None:
        self.pipeline = build_augment(cfg, seed)

    def __call__(self, canvas: np.ndarray) -> np.ndarray:
        out = self.pipeline(image=canvas)["image"]
        return np.clip(out, 0.0, 1.0).astype(np.float32)
