"""Shared fixtures: images drawn in code, nothing downloaded."""

from __future__ import annotations

import cv2
import numpy as np
import pytest


def draw_letter(
    text: str = "A",
    size: tuple[int, int] = (200, 200),
    origin: tuple[int, int] | None = None,
    scale: float = 5.0,
    thickness: int = 12,
    ink: int = 20,
    paper: int = 235,
) -> np.ndarray:
    """A grey image with `text` drawn in a Hershey font: dark ink on light paper by default."""
    h, w = size
    image = np.full((h, w), paper, np.uint8)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = origin if origin is not None else ((w - tw) // 2, (h + th) // 2)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, int(ink), thickness, cv2.LINE_AA)
    return image


@pytest.fixture
def letter_image() -> np.ndarray:
    return draw_letter()
