"""Synthetic photos of handwritten words and numbers, composed from real characters no model saw.

Deterministic: sample `i` of a set depends only on (seed, task, i). Sources:

- `letter`: FEMNIST letters (upper and lower case) of the letters model's **held-out writers**,
  found with the training split itself (`training.data.femnist.writer_split`, the seed and
  fraction recorded in `models/letters/manifest.json`); every word from one writer.
- `digit`: the official MNIST **test** set (its writers are not MNIST-train's), 3–8 digits a number.

Each character keeps its writer's size (FEMNIST frames keep lower case smaller; descenders are
dropped below the baseline), drawn with a pen 5–11 % of the capital height wide; the spacing varies
from slight overlap (touching) to wide, the baseline jitters, the word is tilted up to 2°, and the
result is a phone-like photo: tinted paper, a lighting gradient, sensor noise, JPEG quality 60–92.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]

# Common English words of 2–9 letters; several with i and j (dots), and with descenders.
WORDS = tuple((Path(__file__).parent / "wordlist.txt").read_text(encoding="utf-8").split())
DESCENDERS = frozenset("gjpqy")
# Mean ink heights in the 28×28 frames: FEMNIST capitals (lower case is smaller in its frame,
# which is kept) and MNIST digits (normalised to a 20 px box).
FRAME_HEIGHT = {"letter": 10.5, "digit": 20.0}
X_HEIGHT = 0.6  # of the capital height


@dataclass(frozen=True)
class Sample:
    text: str  # what the model should answer: the letters model's labels are upper case
    written: str  # what was written (case kept)
    image: bytes  # JPEG


@dataclass(frozen=True)
class Source:
    """Ink-high 28×28 images, their characters and their writers (MNIST: one pseudo-writer each)."""

    images: np.ndarray
    chars: np.ndarray
    writers: np.ndarray


def data_dir() -> Path:
    """`HWR_DATA_DIR`, else ../shared/data beside the checkout (as training does)."""
    return Path(os.environ.get("HWR_DATA_DIR", REPO.parent / "shared" / "data"))


def held_out_letters(root: Path) -> Source:
    """FEMNIST letters of the writers the letters model held out (its own split, seed and fraction)."""
    # Lazy: training is needed only here, never by the service.
    from training.data.femnist import load_femnist, writer_split
    from training.data.labels import merged_letter

    config = json.loads((REPO / "models" / "letters" / "manifest.json").read_text())["training"]["config"]
    samples = load_femnist(root / "femnist" / "femnist.npz")
    # Exactly as training.data.letters does: letters only, then the writer split.
    samples = samples.subset(np.flatnonzero([merged_letter(c) is not None for c in samples.chars]))
    _, val = writer_split(samples.writers, float(config["val_fraction"]), int(config["seed"]))
    held = samples.subset(val)
    return Source(held.images, held.chars, held.writers)


def mnist_test_digits(root: Path) -> Source:
    from training.data.digits import load_mnist

    images, labels = load_mnist(root, "test")
    return Source(images, np.array([str(d) for d in labels]), np.arange(len(labels)))


def load_source(task: str, root: Path | None = None) -> Source:
    root = root or data_dir()
    return held_out_letters(root) if task == "letter" else mnist_test_digits(root)


def pick_word(source: Source, rng: np.random.Generator) -> tuple[str, list[np.ndarray]]:
    """A word one writer can write (in the drawn case where the writer has it), and its glyphs."""
    writers = np.unique(source.writers)
    while True:
        mask = source.writers == writers[rng.integers(len(writers))]
        images, chars = source.images[mask], source.chars[mask]
        word = WORDS[rng.integers(len(WORDS))]
        style = rng.choice(["upper", "lower", "title"], p=[0.45, 0.4, 0.15])
        wanted = word.upper() if style == "upper" else word.capitalize() if style == "title" else word
        written, glyphs = [], []
        for c in wanted:
            # The writer's glyph in the wanted case, else in the other (FEMNIST writers skip some).
            options = [np.flatnonzero(chars == v) for v in (c, c.swapcase())]
            found = next((o for o in options if len(o)), None)
            if found is None:
                break
            i = int(found[rng.integers(len(found))])
            written.append(str(chars[i]))
            glyphs.append(images[i])
        if len(glyphs) == len(wanted):
            return "".join(written), glyphs


def pick_number(source: Source, rng: np.random.Generator) -> tuple[str, list[np.ndarray]]:
    picks = rng.choice(len(source.chars), size=int(rng.integers(3, 9)), replace=False)
    return "".join(source.chars[picks]), [source.images[i] for i in picks]


def pen_stroke(glyph: np.ndarray, scale: float, cap: float, rng: np.random.Generator) -> np.ndarray:
    """The glyph (28×28 ink-high) at `scale` px per frame pixel, as a sharp pen line of a random
    width (5–11 % of the capital height `cap`), soft-edged, cropped to its ink."""
    size = max(8, round(28 * scale))
    mask = (
        cv2.resize(glyph.astype(np.float32) / 255, (size, size), interpolation=cv2.INTER_CUBIC) > 0.4
    ).astype(np.uint8)
    boundary = int((mask - cv2.erode(mask, np.ones((3, 3), np.uint8))).sum())
    width = 2.0 * int(mask.sum()) / max(boundary, 1)  # the scan's (thick) mean stroke width
    radius = round((width - cap * rng.uniform(0.05, 0.11)) / 2)
    if radius >= 1:
        thinner = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
        mask = thinner if thinner.any() else mask
    ink = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(0.6, cap / 80))
    ys, xs = np.nonzero(ink > 0.05)
    return ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def lay_out(written: str, glyphs: list[np.ndarray], task: str, rng: np.random.Generator) -> np.ndarray:
    """The word's ink (float32 in [0, 1]) on a transparent strip: baseline, spacing, jitter, tilt."""
    cap = float(rng.uniform(32, 90))
    scale = cap / FRAME_HEIGHT[task]
    inks = [pen_stroke(g, scale, cap, rng) for g in glyphs]
    margin = round(cap)
    width = sum(i.shape[1] for i in inks) + round(0.5 * cap * len(inks)) + 2 * margin
    height = round(3 * cap) + 2 * margin
    strip = np.zeros((height, width), np.float32)
    baseline, x = margin + round(2 * cap), margin
    for char, ink in zip(written, inks, strict=True):
        h, w = ink.shape
        # Slight overlap (touching) one time in five, else a gap up to 0.4 of the capital height.
        gap = rng.uniform(-0.08, 0.0) if rng.random() < 0.2 else rng.uniform(0.04, 0.4)
        x = max(0, x + round(gap * cap)) if x > margin else x
        bottom = baseline + round(rng.normal(0, 0.04) * cap)
        if char in DESCENDERS:
            bottom += h - round(X_HEIGHT * cap)  # the top sits at the x-height
        top = max(0, bottom - h)
        region = strip[top : top + h, x : x + w]
        np.maximum(region, ink[: region.shape[0], : region.shape[1]], out=region)
        x += w
    strip = strip[:, : x + margin]
    angle = rng.uniform(-2, 2)
    turn = cv2.getRotationMatrix2D((strip.shape[1] / 2, strip.shape[0] / 2), angle, 1.0)
    strip = cv2.warpAffine(strip, turn, (strip.shape[1], strip.shape[0]))
    ys, xs = np.nonzero(strip > 0.05)
    pad = [round(rng.uniform(0.3, 1.2) * cap) for _ in range(4)]
    cropped = strip[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return cv2.copyMakeBorder(cropped, pad[0], pad[1], pad[2], pad[3], cv2.BORDER_CONSTANT, value=0.0)


def photograph(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """The ink multiplied onto lit, tinted paper, with sensor noise; a JPEG."""
    h, w = ink.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xs / w + np.sin(angle) * ys / h + 1.0) / 2  # 0..1 across the frame
    light = 1.0 - rng.uniform(0.1, 0.35) * ramp
    base, tint = rng.uniform(200, 240), rng.uniform(0, 25)
    paper = np.array([base - tint, base - tint / 2, base], np.float32)  # BGR: warm white
    pens = [(110, 45, 25), (45, 40, 40), (60, 30, 35)]  # BGR: blue ballpoint, black, dark pen
    pen = np.array(pens[int(rng.integers(len(pens)))], np.float32) / 235.0
    photo = light[..., None] * paper * (1.0 - ink[..., None] * (1.0 - pen))
    photo += rng.normal(0, rng.uniform(2, 6), photo.shape).astype(np.float32)
    quality = int(rng.integers(60, 93))
    ok, data = cv2.imencode(
        ".jpg", np.clip(photo, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError("could not encode JPEG")
    return data.tobytes()


def make_sample(task: str, source: Source, index: int, seed: int) -> Sample:
    # One generator per sample: any subset of the set is reproducible on its own.
    rng = np.random.default_rng([seed, ("letter", "digit").index(task), index])
    written, glyphs = (pick_word if task == "letter" else pick_number)(source, rng)
    image = photograph(lay_out(written, glyphs, task, rng), rng)
    return Sample(text=written.upper(), written=written, image=image)


def build_samples(task: str, count: int, seed: int = 0, source: Source | None = None) -> list[Sample]:
    source = source or load_source(task)
    return [make_sample(task, source, i, seed) for i in range(count)]
