"""The benchmark's upload set: real handwritten characters as crops and as phone-style JPEG photos.

Deterministic (seeded). Glyphs come from the model's own validation writers (FEMNIST via the task
loader, so never trained on), or from tests/data/*_scan.png when the shared data is missing. Kinds:

- `crop`: the character alone, 64–128 px, on paper; PNG and JPEG alternately.
- `photo_640`: a 640×480 JPEG (quality 85): the character at 30–60 % of the height, dark ink
  multiplied onto tinted paper with a lighting gradient, vignette, paper texture and sensor noise.
- `photo_12mp`: the same recipe at 4000×3000 (a phone camera's 12 MP).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bench.server import REPO

KINDS = ("crop", "photo_640", "photo_12mp")
PHOTO_SIZES = {"photo_640": (640, 480), "photo_12mp": (4000, 3000)}  # width, height
JPEG_QUALITY = 85
TEST_DATA = REPO / "tests" / "data"


@dataclass(frozen=True)
class Glyph:
    ink: np.ndarray  # float32 H×W in [0, 1], 1 = ink, cropped to the character
    label: str  # the expected top-1 answer


@dataclass(frozen=True)
class Upload:
    kind: str
    name: str
    label: str
    data: bytes
    width: int
    height: int


def data_dir() -> Path:
    """`HWR_DATA_DIR`, else ../shared/data beside the checkout (as training does)."""
    return Path(os.environ.get("HWR_DATA_DIR", REPO.parent / "shared" / "data"))


def to_glyph(image: np.ndarray, label: str) -> Glyph:
    """An ink-high uint8 scan (FEMNIST/MNIST style) → its ink in [0, 1], cropped to the ink."""
    ink = image.astype(np.float32) / max(float(image.max()), 1.0)
    ys, xs = np.nonzero(ink > 0.2)
    return Glyph(np.ascontiguousarray(ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]), label)


def sample_glyphs(task: str) -> list[Glyph]:
    """The repository's real scans (validation writers / MNIST test): 10 per task."""
    pattern = {"letter": "[A-Z]_scan.png", "digit": "digits/[0-9]_scan.png"}[task]
    paths = sorted(TEST_DATA.glob(pattern))
    return [to_glyph(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), p.name[0]) for p in paths]


def validation_glyphs(task: str, count: int, seed: int, root: Path | None = None) -> list[Glyph]:
    """`count` glyphs drawn (seeded) from the task's validation split, the committed model's own
    split settings; the repository's scans when the shared data is missing."""
    root = root or data_dir()
    if not (root / "femnist" / "femnist.npz").is_file():
        return sample_glyphs(task)
    # Lazy: the task loaders import torch, which only this path needs. The package registers them.
    from training.data.tasks import load_task

    model = {"letter": "letters", "digit": "digits"}[task]
    config = json.loads((REPO / "models" / model / "manifest.json").read_text())["training"]["config"]
    data = load_task(task, root, float(config["val_fraction"]), int(config["seed"]))
    labels = next(iter(data.heads.values()))
    targets = next(iter(data.val.targets.values()))
    picks = np.random.default_rng(seed).choice(len(data.val), size=min(count, len(data.val)), replace=False)
    return [to_glyph(data.val.images[i], labels[int(targets[i])]) for i in picks]


def render_ink(glyph: Glyph, height: int, rng: np.random.Generator) -> np.ndarray:
    """The glyph's ink at `height` px: a pen stroke 4–9 % of the height wide, sharp but slightly out of
    focus, with a margin so the blur is not cut off. Shaped at ≤ 400 px, where erosion is cheap."""
    h, w = glyph.ink.shape
    work = min(height, 400)
    size = (max(1, round(w * work / h)), work)
    mask = (cv2.resize(glyph.ink, size, interpolation=cv2.INTER_CUBIC) > 0.45).astype(np.uint8)
    boundary = int((mask - cv2.erode(mask, np.ones((3, 3), np.uint8))).sum())
    width = 2.0 * int(mask.sum()) / max(boundary, 1)  # the mean stroke width (scans: thick)
    radius = round((width - work * rng.uniform(0.04, 0.09)) / 2)
    if radius >= 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        thinner = cv2.erode(mask, kernel)
        mask = thinner if thinner.any() else mask
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.0)
    ink = cv2.resize(soft, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_LINEAR)
    ink = np.clip((ink - 0.3) / 0.4, 0.0, 1.0)
    sigma = max(0.5, height / 500) * rng.uniform(0.7, 1.3)
    pad = int(3 * sigma) + 2
    ink = cv2.copyMakeBorder(ink, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0.0)
    return cv2.GaussianBlur(ink, (0, 0), sigma)


def paper(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Uint8 H×W×3 BGR lit paper: warm tint, a linear lighting gradient in a random direction, a
    vignette and low-frequency texture, computed at 1/16 size and upscaled (12 MP stays cheap)."""
    sw, sh = max(8, width // 16), max(6, height // 16)
    ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xs / sw + np.sin(angle) * ys / sh) + 1.0  # 0..2 across the frame
    light = 1.0 - rng.uniform(0.15, 0.35) * ramp / 2
    r2 = ((xs / sw - 0.5) ** 2 + (ys / sh - 0.5) ** 2) / 0.5
    light *= 1.0 - rng.uniform(0.05, 0.2) * r2
    texture = cv2.GaussianBlur(rng.normal(0, 1, (sh, sw)).astype(np.float32), (0, 0), 1.5)
    light *= 1.0 + 0.03 * texture / max(float(np.abs(texture).max()), 1e-6)
    base, tint = rng.uniform(205, 240), rng.uniform(0, 25)
    colour = np.array([base - tint, base - tint / 2, base], np.float32)  # BGR: warm white
    small = np.clip(light[..., None] * colour + 0.5, 0, 255).astype(np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def compose(canvas: np.ndarray, ink: np.ndarray, top: int, left: int, rng: np.random.Generator) -> None:
    """Multiply the ink into the lit paper in place: the pen darkens whatever light falls there."""
    pens = [(110, 45, 25), (45, 40, 40), (60, 30, 35)]  # BGR: blue ballpoint, black, dark pen
    pen = np.array(pens[int(rng.integers(len(pens)))], np.float32) / 235.0
    h, w = ink.shape
    region = canvas[top : top + h, left : left + w]
    region[:] = np.clip(region * (1.0 - ink[..., None] * (1.0 - pen)) + 0.5, 0, 255).astype(np.uint8)


def finish(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise, σ 4–7 grey levels per channel: at quality 85 a 12 MP photo is then 1–2 MB, as
    from a phone. OpenCV's generator (seeded from `rng`) is several times faster than numpy's here."""
    sigma = rng.uniform(4.0, 7.0)
    cv2.setRNGSeed(int(rng.integers(2**31)))
    noise = np.empty(canvas.shape, np.int16)
    cv2.randn(noise, 0.0, (sigma,) * canvas.shape[2])
    return cv2.add(canvas, noise, dtype=cv2.CV_8U)


def photo(glyph: Glyph, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A BGR phone-style photo of the glyph at 30–60 % of the frame height, placed at random."""
    canvas = paper(width, height, rng)
    ink = render_ink(glyph, round(height * rng.uniform(0.3, 0.6)), rng)
    ink = ink[:, : width - 2]  # a very wide glyph would not fit (never for letters at 4:3)
    h, w = ink.shape
    top = int(rng.integers(height // 20, height - h - height // 20 + 1))
    left = int(rng.integers(width // 20, width - w - width // 20 + 1))
    compose(canvas, ink, top, left, rng)
    return finish(canvas, rng)


def crop(glyph: Glyph, rng: np.random.Generator) -> np.ndarray:
    """A BGR crop around the glyph (64–128 px), as an app cropping the character would send."""
    side = int(rng.integers(64, 129))
    ink = render_ink(glyph, round(side * rng.uniform(0.65, 0.8)), rng)
    ink = ink[:, : side - 4]
    canvas = paper(side, side, rng)
    h, w = ink.shape
    compose(canvas, ink, (side - h) // 2, (side - w) // 2, rng)
    return finish(canvas, rng)


def encode(image: np.ndarray, fmt: str) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if fmt == ".jpg" else []
    ok, buffer = cv2.imencode(fmt, image, params)
    if not ok:
        raise RuntimeError(f"could not encode {fmt}")
    return buffer.tobytes()


def make_upload(kind: str, index: int, glyph: Glyph, seed: int) -> Upload:
    # One generator per upload: any subset of the set is reproducible on its own.
    rng = np.random.default_rng([seed, KINDS.index(kind), index])
    if kind == "crop":
        image, fmt = crop(glyph, rng), (".png" if index % 2 == 0 else ".jpg")
    else:
        image, fmt = photo(glyph, *PHOTO_SIZES[kind], rng), ".jpg"
    name = f"{kind}_{index:03d}_{glyph.label}{fmt}"
    return Upload(kind, name, glyph.label, encode(image, fmt), image.shape[1], image.shape[0])


def build_uploads(counts: dict[str, int], glyphs: list[Glyph], seed: int = 0) -> list[Upload]:
    """`counts[kind]` uploads of each kind; upload i of a kind shows glyph i (cycling)."""
    if not glyphs:
        raise ValueError("no glyphs to draw uploads from")
    return [
        make_upload(kind, i, glyphs[i % len(glyphs)], seed)
        for kind in KINDS
        for i in range(counts.get(kind, 0))
    ]
