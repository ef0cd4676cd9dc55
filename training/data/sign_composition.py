"""Graphemes whose root is real handwriting: a written root joined with synthesised signs.

Real handwritten roots exist here (BanglaLekha-Isolated, CMATERdb) but never with a vowel or
consonant sign attached. A font knows where each sign goes: for a grapheme and its root, both are
rendered (HarfBuzz shaping through Pillow's raqm), the root's render is found inside the grapheme's
(template matching) and what is left over is the signs, placed relative to the root's box
(`SignSprite`). Composition maps that box onto a real root's ink box, redraws the sign strokes with
a pen as wide as the root's own strokes (training.data.pen), and moves and scales each sign part a
little on its own: handwritten signs are shorter, looser and more detached than a font's.

A grapheme whose font render changes its root's shape (a ligature such as রু or হৃ) has no sprite
in that font: the root cannot be found intact, so its signs cannot be cut out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from contract.preprocessing import stroke_width
from training.data.bengali_render import draw_text
from training.data.pen import TRAIN_PEN, PenStyle, Strokes, pen_strokes, stamp

EM = 64  # render size of the sprites: the pen styles' widths are in pixels at this em
MIN_ROOT_COVER = 0.9  # share of the root's ink the grapheme must cover where the root is found
ROOT_GUARD = 2  # pixels around the found root that are never sign (anti-aliased edges)
MIN_SIGN_PART = 12  # sign parts smaller than this (pixels) are edge residue, not signs


@dataclass(frozen=True)
class SignSprite:
    """The signs of one grapheme as a font draws them: their ink and the root's box, one frame."""

    ink: np.ndarray  # float32 in [0, 1]: the sign strokes only
    root_box: tuple[int, int, int, int]  # (x0, y0, x1, y1) of the root's ink, exclusive ends


def ink_of(text: str, font: Path) -> np.ndarray:
    return (255 - draw_text(text, font, EM)).astype(np.float32) / 255.0


def extract_signs(grapheme: str, root: str, font: Path) -> SignSprite | None:
    """The grapheme's sign strokes in `font`, or None where its root is not drawn intact in it."""
    whole, alone = ink_of(grapheme, font), ink_of(root, font)
    ys, xs = np.nonzero(alone > 0.5)
    if not len(ys):
        return None
    template = alone[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    scores = cv2.matchTemplate(whole, template, cv2.TM_CCORR_NORMED)
    _, _, _, (x, y) = cv2.minMaxLoc(scores)
    h, w = template.shape
    root_ink = template > 0.5
    if (whole[y : y + h, x : x + w][root_ink] > 0.3).mean() < MIN_ROOT_COVER:
        return None
    placed = np.zeros(whole.shape, np.uint8)
    placed[y : y + h, x : x + w] = root_ink
    guard = cv2.dilate(placed, np.ones((2 * ROOT_GUARD + 1,) * 2, np.uint8))
    signs = whole * (1 - guard)
    _, labels, stats, _ = cv2.connectedComponentsWithStats((signs > 0.5).astype(np.uint8), connectivity=8)
    parts = 1 + np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= MIN_SIGN_PART)
    if not len(parts):
        return None
    kept = cv2.dilate(np.isin(labels, parts).astype(np.uint8), np.ones((3, 3), np.uint8))
    signs = signs * kept  # the kept parts with their soft edges, no residue
    return SignSprite(signs.astype(np.float32), (x, y, x + w, y + h))


@dataclass(frozen=True)
class Looseness:
    """How far each sign part strays from where the font puts it, drawn uniformly per part."""

    shift: float = 0.08  # ± share of the root's size
    scale: tuple[float, float] = (0.75, 1.1)  # about the part's own centre
    rotate: float = 8.0  # degrees, ±
    pen_width: tuple[float, float] = (0.75, 1.25)  # × the root's measured stroke width


TRAIN_LOOSENESS = Looseness()
HELDOUT_LOOSENESS = Looseness(shift=0.12, scale=(0.65, 0.95), rotate=12.0, pen_width=(0.9, 1.4))


def _part_moves(
    rng: np.random.Generator, looseness: Looseness, size: float, centre: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    angle = np.deg2rad(rng.uniform(-looseness.rotate, looseness.rotate))
    scale = rng.uniform(*looseness.scale)
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shift = rng.uniform(-looseness.shift, looseness.shift, size=2) * size
    return linear, centre - linear @ centre + shift


def compose(
    root: np.ndarray,
    sprite: SignSprite,
    rng: np.random.Generator,
    pen: PenStyle = TRAIN_PEN,
    looseness: Looseness = TRAIN_LOOSENESS,
) -> np.ndarray:
    """A real root's ink (float32 in [0, 1], cropped to the ink) with the sprite's signs written on
    → float32 ink in [0, 1] of the whole grapheme."""
    x0, y0, x1, y1 = sprite.root_box
    h, w = root.shape
    sx, sy = w / (x1 - x0), h / (y1 - y0)
    width = stroke_width(root) * rng.uniform(*looseness.pen_width)
    # The sprite's pen width is in font pixels: drawn there as wide as the root's strokes will be.
    strokes = pen_strokes(sprite.ink, rng, pen, width=width / np.sqrt(sx * sy))
    to_root = np.diag([sx, sy]).astype(np.float32)
    strokes = strokes.moved(to_root, -to_root @ np.array([x0, y0], np.float32))
    strokes = Strokes(strokes.points, strokes.radius * np.float32(np.sqrt(sx * sy)), strokes.anchors)

    count, labels = cv2.connectedComponents((sprite.ink > 0.5).astype(np.uint8), connectivity=8)
    anchors = np.clip(strokes.anchors.round().astype(int), 0, np.array(labels.shape[::-1]) - 1)
    part_of = labels[anchors[:, 1], anchors[:, 0]]
    parts = []
    for part in range(1, count):
        keep = part_of == part
        if keep.any():
            centre = strokes.points[keep].mean(axis=0)
            linear, offset = _part_moves(rng, looseness, float(max(h, w)), centre)
            parts.append(strokes.moved(linear, offset, keep))
    if not parts:
        raise ValueError("the sprite's signs left no pen strokes")
    return stamp(*parts, background=(root, np.zeros(2, np.float32)))


def on_paper(ink: np.ndarray, rng: np.random.Generator, pad: float = 0.15) -> np.ndarray:
    """Ink strength → a uint8 grey scan: dark ink on light paper, a margin, a little blur and noise."""
    margin = max(2, round(pad * max(ink.shape)))
    ink = cv2.copyMakeBorder(ink, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0.0)
    paper, pen = rng.uniform(190.0, 250.0), rng.uniform(0.0, 80.0)
    image = paper + (pen - paper) * ink
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.0))
    image += rng.normal(0.0, rng.uniform(0.0, 6.0), image.shape)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)
