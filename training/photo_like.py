"""Re-render a low-resolution scan as a crisp, high-resolution "photo" of the same glyph.

Scans like FEMNIST are 28×28: upscaled, their strokes are soft and blurry. A phone photo of a pen
stroke is sharp at any size. Training on both looks (same glyph, same label) keeps the model from
learning the scanner instead of the letter. The result is an ordinary image that then goes through
the service's preprocessing like any upload.
"""

from __future__ import annotations

import cv2
import numpy as np

from contract.preprocessing import PreprocessConfig, crop_to_ink, ink_strength, remove_specks, to_gray


def ink_crop(image: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """The glyph's ink strength in [0, 1], cropped to the ink, whatever the image's polarity."""
    return crop_to_ink(remove_specks(ink_strength(to_gray(image), cfg), cfg))


def photo_like(image: np.ndarray, rng: np.random.Generator, cfg: PreprocessConfig) -> np.ndarray:
    """uint8 grey image: the glyph's ink, enlarged to 160–320 px, sharp-edged, with a random pen
    width, dark ink on light paper with sensor noise."""
    strength = ink_crop(image, cfg)
    side = int(rng.integers(160, 321))
    scale = side / max(strength.shape)
    size = (max(1, round(strength.shape[1] * scale)), max(1, round(strength.shape[0] * scale)))
    # A low threshold keeps the faint, thin parts of the scan connected.
    ink = cv2.resize(strength, size, interpolation=cv2.INTER_CUBIC) > 0.25
    # Pen width: thinner (up to 3 % of the glyph size) or thicker (up to 6 %) than the scan's.
    radius = round(rng.uniform(-0.03, 0.06) * side)
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1,) * 2)
        changed = (cv2.dilate if radius > 0 else cv2.erode)(ink.astype(np.uint8), kernel) > 0
        ink = changed if changed.any() else ink
    margin = side // 4
    paper, pen = rng.uniform(170, 245), rng.uniform(10, 90)
    photo = np.full((ink.shape[0] + 2 * margin, ink.shape[1] + 2 * margin), paper, np.float32)
    photo[margin : margin + ink.shape[0], margin : margin + ink.shape[1]][ink] = pen
    photo = cv2.GaussianBlur(photo, (0, 0), rng.uniform(0.3, 1.5))  # focus and pen softness
    photo += rng.normal(0, rng.uniform(0, 6), photo.shape)
    return np.clip(photo, 0, 255).astype(np.uint8)


def simulated_photo(image: np.ndarray | None, rng: np.random.Generator, cfg: PreprocessConfig) -> np.ndarray:
    """A 640×480 BGR "phone photo" for evaluation, unlike the training re-renderings: the scan's
    soft ink enlarged to 240 px as blue ballpoint on warm paper, a lighting gradient, sensor noise
    (JPEG-compress it too). No image: blank paper."""
    h, w = 480, 640
    ink = np.zeros((h, w), np.float32)
    if image is not None:
        strength = ink_crop(image, cfg)
        scale = 240 / max(strength.shape)
        size = (max(1, round(strength.shape[1] * scale)), max(1, round(strength.shape[0] * scale)))
        big = np.clip(cv2.resize(strength, size, interpolation=cv2.INTER_CUBIC), 0, 1)
        y, x = int(rng.integers(40, h - size[1] - 39)), int(rng.integers(60, w - size[0] - 59))
        ink[y : y + size[1], x : x + size[0]] = big
    light = np.outer(np.linspace(1.0, 0.8, h), np.linspace(0.65, 1.0, w)).astype(np.float32)
    paper = np.array([214, 226, 232], np.float32)  # BGR, warm white
    pen = np.array([70, 40, 30], np.float32)  # BGR, dark blue ballpoint
    photo = (paper * (1 - ink[..., None]) + pen * ink[..., None]) * light[..., None]
    photo += rng.normal(0, 4, photo.shape)
    return np.clip(photo, 0, 255).astype(np.uint8)
