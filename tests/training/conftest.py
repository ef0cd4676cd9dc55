"""A tiny FEMNIST-format data directory drawn in code (the real data is never needed by tests)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from training.data.labels import FEMNIST_CLASSES

FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
)


def glyph(char: str, font: int, rng: np.random.Generator) -> np.ndarray:
    """28×28 ink-high (MNIST convention) image of `char`, slightly off-centre like FEMNIST."""
    image = np.zeros((28, 28), np.uint8)
    x, y = rng.integers(3, 9), rng.integers(19, 24)
    cv2.putText(image, char, (int(x), int(y)), font, 0.7, 255, int(rng.integers(1, 3)), cv2.LINE_AA)
    return image


def write_fake_femnist(root: Path, writers: int = 8, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    images, labels, writer_ids = [], [], []
    for w in range(writers):
        for label, char in enumerate(FEMNIST_CLASSES):
            images.append(glyph(char, FONTS[w % len(FONTS)], rng))
            labels.append(label)
            writer_ids.append(f"f{w:04d}")
    path = root / "femnist" / "femnist.npz"
    path.parent.mkdir(parents=True)
    np.savez_compressed(
        path,
        images=np.stack(images),
        labels=np.array(labels, np.uint8),
        writers=np.array(writer_ids),
        classes=np.array(FEMNIST_CLASSES),
    )
    return root


@pytest.fixture(scope="session")
def fake_data_dir(tmp_path_factory) -> Path:
    return write_fake_femnist(tmp_path_factory.mktemp("data"))
