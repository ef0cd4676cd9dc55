"""Regenerates the sample images in tests/data/ from FEMNIST (run once by hand; tests only read the PNGs).

    HWR_DATA_DIR=../shared/data .venv/bin/python tests/data/make_samples.py

Each sample is a real handwritten character by a writer of the letters model's *validation* split
(never seen in training). `*_scan.png` is the FEMNIST image as stored; `*_photo.jpg` is the same
glyph enlarged onto a synthetic phone-photo background (paper tint, lighting gradient, sensor noise,
JPEG) — a simulated photo, not a camera capture.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from training.config import default_data_dir
from training.data.tasks import load_task

OUT = Path(__file__).parent
# (letter, index within the validation split's samples of that letter)
CHOICES = [("A", 1), ("B", 0), ("E", 1), ("H", 7), ("K", 0), ("M", 0), ("R", 0), ("S", 0), ("T", 6), ("W", 0)]


def fake_photo(glyph: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Dark ink on tinted paper, 640×480, uneven light, noise, JPEG-ready BGR (no glyph: blank paper)."""
    h, w = 480, 640
    ink = np.zeros((h, w), np.float32)
    if glyph is not None:
        paste_glyph(ink, glyph, rng)
    light = np.outer(np.linspace(1.0, 0.8, h), np.linspace(0.65, 1.0, w)).astype(np.float32)
    paper = np.array([214, 226, 232], np.float32)  # BGR, warm white
    pen = np.array([70, 40, 30], np.float32)  # BGR, dark blue ballpoint
    image = (paper * (1 - ink[..., None]) + pen * ink[..., None]) * light[..., None]
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def paste_glyph(ink: np.ndarray, glyph: np.ndarray, rng: np.random.Generator) -> None:
    """The glyph cropped to its ink, enlarged to 240 px, at a random place of the ink layer."""
    ys, xs = np.nonzero(glyph > 30)
    crop = glyph[max(ys.min() - 2, 0) : ys.max() + 3, max(xs.min() - 2, 0) : xs.max() + 3]
    scale = 240 / max(crop.shape)
    size = (round(crop.shape[1] * scale), round(crop.shape[0] * scale))
    big = cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    h, w = ink.shape
    y, x = int(rng.integers(40, h - size[1] - 40)), int(rng.integers(60, w - size[0] - 60))
    ink[y : y + size[1], x : x + size[0]] = np.clip(big, 0, 1)


def main() -> None:
    data = load_task("letter", default_data_dir(), val_fraction=0.15, seed=0)
    rng = np.random.default_rng(0)
    labels = data.val.targets["letter"]
    for letter, nth in CHOICES:
        index = np.flatnonzero(labels == ord(letter) - ord("A"))[nth]
        glyph = data.val.images[index]
        cv2.imwrite(str(OUT / f"{letter}_scan.png"), glyph)
        cv2.imwrite(str(OUT / f"{letter}_photo.jpg"), fake_photo(glyph, rng), [cv2.IMWRITE_JPEG_QUALITY, 85])
    cv2.imwrite(str(OUT / "blank_photo.jpg"), fake_photo(None, rng), [cv2.IMWRITE_JPEG_QUALITY, 85])


if __name__ == "__main__":
    main()
