"""IAM handwriting (the study's data): writers from forms_for_parsing.txt, sentence images, 113×113 crops.

Layout (as distributed by the IAM database): `forms_for_parsing.txt` lines `a01-000u 000 ...`
(form id, writer id, then fields not needed here) and `sentences/a01/a01-000u/a01-000u-s00-00.png`.
Each sentence image is resized to a fixed height keeping its aspect ratio (the seed's resize), then
cut into square crops: random ones for training, sequential ones for evaluation. Splits are made per
sentence image (a writer's images 70/15/15), never per crop: crops of one line share too much.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class SentenceImage:
    path: Path
    writer: str


def parse_forms(path: Path) -> dict[str, str]:
    """form id → writer id; comment lines (`#`) and blank lines skipped."""
    forms = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) >= 2 and not line.startswith("#"):
            forms[fields[0]] = fields[1]
    return forms


def sentence_images(root: Path) -> list[SentenceImage]:
    """Every sentence image whose form is listed, with its writer, in path order."""
    forms = parse_forms(root / "forms_for_parsing.txt")
    found = []
    for path in sorted((root / "sentences").glob("*/*/*.png")):
        writer = forms.get(path.parent.name)
        if writer is not None:
            found.append(SentenceImage(path, writer))
    return found


def top_writers(images: list[SentenceImage], n: int) -> list[str]:
    """The n writers with the most sentence images (ties by id)."""
    counts = Counter(image.writer for image in images)
    return sorted(counts, key=lambda w: (-counts[w], w))[:n]


def load_ink(path: Path, height: int) -> np.ndarray:
    """The image as ink-high float32 in [0, 1] (IAM is dark ink on light paper), `height` rows tall."""
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise ValueError(f"cannot read {path}")
    width = max(1, round(gray.shape[1] * height / gray.shape[0]))
    resized = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA)
    return 1.0 - resized.astype(np.float32) / 255.0


def pad_to(ink: np.ndarray, side: int) -> np.ndarray:
    """Widen (or heighten) with paper to at least side×side."""
    h, w = ink.shape
    return np.pad(ink, ((0, max(0, side - h)), (0, max(0, side - w))))


def random_crops(ink: np.ndarray, side: int, n: int, rng: np.random.Generator) -> np.ndarray:
    ink = pad_to(ink, side)
    h, w = ink.shape
    tops, lefts = rng.integers(0, h - side + 1, n), rng.integers(0, w - side + 1, n)
    return np.stack([ink[t : t + side, x : x + side] for t, x in zip(tops, lefts, strict=True)])


def sequential_crops(ink: np.ndarray, side: int) -> np.ndarray:
    """Left to right, non-overlapping; a last partial crop is padded with paper."""
    ink = pad_to(ink, side)[:side]
    n = -(-ink.shape[1] // side)
    return np.stack([pad_to(ink[:, i * side : (i + 1) * side], side) for i in range(n)])


def split_images(
    images: list[SentenceImage], fractions: tuple[float, float, float], seed: int
) -> list[list[int]]:
    """Indices of train / val / test sentence images, cut within each writer."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    cuts = np.cumsum(fractions)[:2] / sum(fractions)
    for writer in sorted({image.writer for image in images}):
        own = rng.permutation([i for i, image in enumerate(images) if image.writer == writer])
        for part, chunk in zip(parts, np.split(own, np.round(cuts * len(own)).astype(int)), strict=True):
            part.extend(int(i) for i in chunk)
    return [sorted(p) for p in parts]


def crops_of(
    images: list[SentenceImage], classes: list[str], height: int, side: int, per_image: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Crops (N×1×side×side float32, ink-high) and writer class indices; per_image 0 = sequential."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for image in images:
        ink = load_ink(image.path, height)
        crops = random_crops(ink, side, per_image, rng) if per_image else sequential_crops(ink, side)
        xs.append(crops)
        ys.append(np.full(len(crops), classes.index(image.writer), np.int64))
    return np.concatenate(xs)[:, None], np.concatenate(ys)
