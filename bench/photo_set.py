"""A photo test set: real held-out characters photographed, in simulation, on varied paper, light and pens.

Deterministic (seeded): sample i of a task is drawn by its own generator, so any subset is
reproducible on its own. The glyphs are real handwriting the committed models never trained on:
FEMNIST letters by the letters model's validation writers, and MNIST's test digits, both read
through the training task loaders with the model's own split settings (its manifest).

Each sample is one cropped character as a phone app would upload it, with three conditions:

- paper: white, grey, yellow, ruled (dark or light rules), squared (a grid);
- pen: blue or black ballpoint, a bold marker, faint pencil (45–75 grey levels below the paper,
  the faint pencil users photograph) and grey pencil, both with graphite grain;
- light: even, a gradient, or a cast shadow with a soft edge;

then camera blur, sensor noise and JPEG (or PNG), in a crop of 20–200 px that is tight (the ink
nearly touching the edges) or loose. The conditions cycle through every combination, so each
paper, pen and light gets the same number of samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bench.photos import Glyph, data_dir, to_glyph
from bench.server import REPO
from contract.manifest import Manifest

PAPERS = ("white", "grey", "yellow", "ruled", "squared")
PENS = ("ballpoint_blue", "ballpoint_black", "marker", "pencil_faint", "pencil_grey")
LIGHTS = ("even", "gradient", "shadow")
TASK_MODELS = {"letter": "letters", "digit": "digits"}


@dataclass(frozen=True)
class Sample:
    task: str
    index: int
    label: str
    paper: str
    pen: str
    light: str
    crop: str  # "tight" or "loose"
    side: int  # the crop's longer side in pixels
    fmt: str  # ".jpg" or ".png"
    data: bytes
    blank: bool = False  # the same crop without the character: the answer must be 422 no_ink

    @property
    def name(self) -> str:
        what = "blank" if self.blank else self.label
        return f"{self.task}_{self.index:04d}_{what}_{self.paper}_{self.pen}_{self.light}{self.fmt}"


def held_out_glyphs(task: str, root: Path, model_dir: Path) -> list[Glyph]:
    """Every held-out glyph of the task: the letters model's validation writers (FEMNIST is split
    by writer), or MNIST's test set for digits (the digits model trained on MNIST's training set)."""
    # Lazy: the task loaders import torch, which only building the set needs.
    from training.data.tasks import load_task

    config = Manifest.load(model_dir / TASK_MODELS[task]).training.config
    data = load_task(task, root, float(config["val_fraction"]), int(config["seed"]), evaluation_only=True)
    split = data.tests["mnist_test"] if task == "digit" else data.val
    labels = next(iter(data.heads.values()))
    targets = next(iter(split.targets.values()))
    return [to_glyph(split.images[i], labels[int(targets[i])]) for i in range(len(split))]


def conditions(index: int) -> tuple[str, str, str]:
    """Sample i's paper, pen and light: every combination once per 75 samples."""
    return (
        PAPERS[index % len(PAPERS)],
        PENS[(index // len(PAPERS)) % len(PENS)],
        LIGHTS[(index // (len(PAPERS) * len(PENS))) % len(LIGHTS)],
    )


# --- the pen -----------------------------------------------------------------------------------


def stroke_mask(glyph: Glyph, height: int, width_fraction: float) -> np.ndarray:
    """The glyph's strokes at `height` px, `width_fraction` of the height wide (float32 0/1).

    Shaped at 4× the glyph's final size (at least 64 px), where thinning and thickening are exact,
    then area-resized: edges come out anti-aliased like a photo's."""
    h, w = glyph.ink.shape
    work = max(64, 4 * height)
    size = (max(1, round(w * work / h)), work)
    mask = (cv2.resize(glyph.ink, size, interpolation=cv2.INTER_CUBIC) > 0.45).astype(np.uint8)
    # Room for a thickened stroke: the glyph is cropped to its scanned ink.
    pad = round(0.15 * work)
    mask = cv2.copyMakeBorder(mask, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    boundary = int((mask - cv2.erode(mask, np.ones((3, 3), np.uint8))).sum())
    width = 2.0 * int(mask.sum()) / max(boundary, 1)  # mean stroke width of the scan at `work`
    change = round((work * width_fraction - width) / 2)
    if change:
        radius = abs(change)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        changed = cv2.dilate(mask, kernel) if change > 0 else cv2.erode(mask, kernel)
        mask = changed if changed.any() else mask
    ys, xs = np.nonzero(mask)
    mask = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    scale = height / work
    out = (max(1, round(mask.shape[1] * scale)), max(1, round(mask.shape[0] * scale)))
    return cv2.resize(mask.astype(np.float32), out, interpolation=cv2.INTER_AREA)


def pen_ink(glyph: Glyph, height: int, pen: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(coverage H×W in [0, 1], the pen's RGB colour or None for pencil darkness)."""
    width = {
        "ballpoint_blue": rng.uniform(0.04, 0.08),
        "ballpoint_black": rng.uniform(0.04, 0.08),
        "marker": rng.uniform(0.14, 0.22),
        "pencil_faint": rng.uniform(0.035, 0.07),
        "pencil_grey": rng.uniform(0.035, 0.07),
    }[pen]
    # A stroke is at least about one pixel wide, or a 20 px crop would have no ink at all.
    width = max(width, 1.2 / height)
    coverage = stroke_mask(glyph, height, width)
    if pen.startswith("pencil"):
        # Graphite grain: the paper's tooth shows through the stroke, and the pressure varies.
        grain = cv2.GaussianBlur(rng.normal(0, 1, coverage.shape).astype(np.float32), (0, 0), 0.6)
        pressure = cv2.GaussianBlur(rng.normal(0, 1, coverage.shape).astype(np.float32), (0, 0), height / 6)
        pressure /= max(float(np.abs(pressure).max()), 1e-6)
        density = np.clip(0.8 + 0.25 * grain / max(float(grain.std()), 1e-6) + 0.15 * pressure, 0.3, 1.0)
        coverage = coverage * density
    colour = {
        "ballpoint_blue": (rng.uniform(20, 60), rng.uniform(30, 70), rng.uniform(120, 170)),
        "ballpoint_black": (rng.uniform(25, 50),) * 3,
        "marker": (rng.uniform(10, 40),) * 3 if rng.random() < 0.6 else (20, 40, rng.uniform(90, 140)),
        "pencil_faint": (rng.uniform(45, 75),) * 3,  # darkness below the paper, not a colour
        "pencil_grey": (rng.uniform(80, 120),) * 3,
    }[pen]
    return coverage, np.array(colour, np.float32)


# --- the paper and the light -------------------------------------------------------------------


def paper_colour(paper: str, rng: np.random.Generator) -> np.ndarray:
    if paper == "grey":
        level = rng.uniform(140, 185)
        return np.array([level, level, level * rng.uniform(0.97, 1.03)], np.float32)
    if paper == "yellow":
        return np.array([rng.uniform(235, 250), rng.uniform(220, 240), rng.uniform(110, 160)], np.float32)
    level = rng.uniform(215, 250)
    return np.array([level, level, level - rng.uniform(0, 12)], np.float32)  # white, a little warm


def rules(shape: tuple[int, int], paper: str, spacing: float, rng: np.random.Generator) -> np.ndarray:
    """Coverage of the printed rules (float32 H×W in [0, 1]): lines a little tilted, 1–2 px wide."""
    h, w = shape
    out = np.zeros((4 * h, 4 * w), np.uint8)  # drawn at 4×, then area-resized: anti-aliased
    thickness = int(rng.integers(3, 9))
    tilt = math.radians(rng.uniform(-2.0, 2.0))
    directions = ("h", "v") if paper == "squared" else ("h",)
    for direction in directions:
        offset = rng.uniform(0, spacing)
        for k in range(-2, int(max(h, w) / spacing) + 3):
            pos = 4 * (offset + k * spacing)
            if direction == "h":
                y0, y1 = pos, pos + 4 * w * math.tan(tilt)
                cv2.line(out, (0, round(y0)), (4 * w, round(y1)), 1, thickness)
            else:
                x0, x1 = pos, pos - 4 * h * math.tan(tilt)
                cv2.line(out, (round(x0), 0), (round(x1), 4 * h), 1, thickness)
    return cv2.resize(out.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)


def light_field(shape: tuple[int, int], light: str, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative light over the crop (float32 H×W, ≤ 1)."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    level = rng.uniform(0.85, 1.0)
    if light == "even":
        return np.full((h, w), level, np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    # Position along a random direction, 0 at one corner of the crop and 1 at the opposite one.
    along = math.cos(angle) * xs / max(w - 1, 1) + math.sin(angle) * ys / max(h - 1, 1)
    along = (along - along.min()) / max(float(along.max() - along.min()), 1e-6)
    if light == "gradient":
        # Across one character the light changes by a few tens of percent at most.
        return (level * (1.0 - rng.uniform(0.1, 0.35) * along)).astype(np.float32)
    # A cast shadow: a soft-edged half-plane, its edge somewhere across the crop.
    edge, soft = rng.uniform(0.25, 0.75), rng.uniform(0.03, 0.2)
    shade = 1.0 / (1.0 + np.exp(-(along - edge) / soft))
    return (level * (1.0 - rng.uniform(0.3, 0.5) * shade)).astype(np.float32)


# --- the camera --------------------------------------------------------------------------------


def camera(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Slight defocus and sensor noise (σ 2–8 grey levels), on a float RGB image → uint8."""
    blurred = cv2.GaussianBlur(rgb, (0, 0), rng.uniform(0.3, 0.9))
    noisy = blurred + rng.normal(0, rng.uniform(2.0, 8.0), rgb.shape).astype(np.float32)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def encode(rgb: np.ndarray, fmt: str, quality: int) -> bytes:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == ".jpg" else []
    ok, buffer = cv2.imencode(fmt, bgr, params)
    if not ok:
        raise RuntimeError(f"could not encode {fmt}")
    return buffer.tobytes()


def render(
    glyph: Glyph, paper: str, pen: str, light: str, rng: np.random.Generator, blank: bool = False
) -> tuple[np.ndarray, str, int]:
    """The RGB crop (uint8), whether it is tight or loose, and its longer side."""
    side = round(math.exp(rng.uniform(math.log(20), math.log(200))))
    tight = rng.random() < 0.5
    margin = rng.uniform(0.02, 0.08) if tight else rng.uniform(0.15, 0.5)
    gh, gw = glyph.ink.shape
    # The longer of the glyph's sides fills the crop but for the margins.
    scale = side / (1 + 2 * margin) / max(gh, gw)
    height = max(4, round(gh * scale))
    coverage, colour = pen_ink(glyph, height, pen, rng)
    ch, cw = coverage.shape
    crop_h, crop_w = round(ch * (1 + 2 * margin)) + 1, round(cw * (1 + 2 * margin)) + 1
    if not tight:  # a loose crop is about square, as a user frames one character
        crop_h = crop_w = max(crop_h, crop_w)
    else:  # even a tight crop of a "1" is not a sliver
        crop_h, crop_w = max(crop_h, round(0.4 * crop_w)), max(crop_w, round(0.4 * crop_h))
    top = int(rng.integers(0, crop_h - ch + 1)) if not tight else (crop_h - ch) // 2
    left = int(rng.integers(0, crop_w - cw + 1)) if not tight else (crop_w - cw) // 2
    alpha = np.zeros((crop_h, crop_w), np.float32)
    alpha[top : top + ch, left : left + cw] = 0.0 if blank else coverage

    base = paper_colour(paper, rng)
    sheet = np.broadcast_to(base, (crop_h, crop_w, 3)).astype(np.float32)
    # Paper texture: low-contrast fibres at a few pixels' scale.
    texture = cv2.GaussianBlur(rng.normal(0, 1, (crop_h, crop_w)).astype(np.float32), (0, 0), 1.5)
    sheet = sheet * (1.0 + 0.02 * texture / max(float(texture.std()), 1e-6))[..., None]
    if paper in ("ruled", "squared"):
        spacing = max(4.0, ch * rng.uniform(0.35, 0.8))
        dark = rng.random() < 0.5
        line_colour = (
            np.array([rng.uniform(60, 120)] * 3, np.float32)
            if dark
            else np.array([150, 180, 225], np.float32) * rng.uniform(0.85, 1.0)
        )
        lines = rules((crop_h, crop_w), paper, spacing, rng)[..., None]
        sheet = sheet * (1 - lines) + line_colour * lines
    # Graphite darkens whatever is under it by about the same amount (`colour` holds the darkness).
    ink = sheet - colour if pen.startswith("pencil") else np.broadcast_to(colour, sheet.shape)
    image = sheet * (1 - alpha[..., None]) + ink * alpha[..., None]
    image = image * light_field((crop_h, crop_w), light, rng)[..., None]
    return camera(image, rng), ("tight" if tight else "loose"), max(crop_h, crop_w)


def make_sample(task: str, index: int, glyph: Glyph, seed: int, blank: bool = False) -> Sample:
    """Sample i of the task; `blank`: the very same crop (paper, light, rules, noise) with no ink."""
    paper, pen, light = conditions(index)
    rng = np.random.default_rng([seed, list(TASK_MODELS).index(task), index])
    rgb, crop, side = render(glyph, paper, pen, light, rng, blank)
    fmt = ".png" if rng.random() < 0.2 else ".jpg"
    data = encode(rgb, fmt, int(rng.integers(60, 93)))
    return Sample(task, index, glyph.label, paper, pen, light, crop, side, fmt, data, blank)


def build_set(
    task: str,
    count: int,
    seed: int = 0,
    root: Path | None = None,
    model_dir: Path | None = None,
    blanks: int = 0,
) -> list[Sample]:
    """`count` samples, glyphs drawn (seeded) without replacement from the held-out set, then
    `blanks` blank crops (the first `blanks` samples' crops without their character)."""
    glyphs = held_out_glyphs(task, root or data_dir(), model_dir or REPO / "models")
    picks = np.random.default_rng([seed, 7]).permutation(len(glyphs))
    chosen = [glyphs[picks[i % len(picks)]] for i in range(max(count, blanks))]
    samples = [make_sample(task, i, chosen[i], seed) for i in range(count)]
    return samples + [make_sample(task, i, chosen[i], seed, blank=True) for i in range(blanks)]
