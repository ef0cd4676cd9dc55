"""Stroke re-rendering: a glyph's skeleton redrawn with a simulated pen, so a font render looks written.

Affine and elastic warps of a font render keep the font's strokes: their even, printed width, clean
joins and exact ends. A writer's pen does not. Here the render's ink is thinned to its skeleton
(scikit-image), the skeleton points are moved by a smooth random field (the hand's wobble) and a
slant, and each point is stamped with a disc whose radius follows a smooth random pressure field.
Joins (skeleton points with three or more neighbours) are sometimes left open (the pen lifted) and
stroke ends sometimes run on (overshoot). Everything random comes from the caller's generator.

A `PenStyle` holds the ranges. Training and the held-out validation use different styles
(`TRAIN_PEN`, `HELDOUT_PEN`), so the validation measures a way of writing that training never drew.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage.morphology import skeletonize

SUBPIXEL_BITS = 2  # cv2.circle's `shift`: centres and radii in quarter pixels
NEIGHBOURS = np.ones((3, 3), np.float32)
# A skeleton's diagonal steps also have three neighbours: joins closer than this are one join.
MIN_JOIN_DISTANCE = 4.0
MAX_OPEN_JOINS = 2  # a lifted pen, not a dotted line


@dataclass(frozen=True)
class PenStyle:
    """Ranges of one way of writing; every value is drawn uniformly from its range per glyph.
    Widths are in pixels of the ink image being redrawn (its em is `em` pixels)."""

    width: tuple[float, float] = (2.0, 6.0)  # mean pen width at em = 64
    pressure: float = 0.45  # width varies along the stroke by up to ± this share of the mean
    wobble: float = 0.04  # largest displacement of the skeleton, × em
    wobble_grid: int = 5  # control points per side of the smooth displacement field
    slant: float = 0.3  # horizontal shear, ±
    rotate: float = 6.0  # degrees, ±
    aspect: tuple[float, float] = (0.85, 1.3)  # x stretch (handwriting runs wide)
    open_joins: float = 0.25  # chance that a given join is left open
    overshoot: float = 0.3  # chance that a given stroke end runs on
    overshoot_length: tuple[float, float] = (0.02, 0.07)  # × em
    em: int = 64


TRAIN_PEN = PenStyle()
# Held out: a steadier, broader pen with less slant but more broken joins and longer overshoots.
HELDOUT_PEN = PenStyle(
    width=(5.0, 8.0),
    pressure=0.2,
    wobble=0.05,
    wobble_grid=3,
    slant=0.15,
    rotate=4.0,
    aspect=(1.1, 1.45),
    open_joins=0.45,
    overshoot=0.5,
    overshoot_length=(0.06, 0.1),
)
# Further training styles, for more variety where fonts are the only source of a root. Each lies on
# the far side of TRAIN_PEN from HELDOUT_PEN in every range the held-out pen is known by (broad,
# steady pressure, little slant, wide, many open joins, long overshoots), so they widen training
# without drawing the held-out way.
QUICK_PEN = PenStyle(  # a fine pen written fast: thin, jittery, slanted, narrow
    width=(1.5, 4.0),
    pressure=0.5,
    wobble=0.06,
    wobble_grid=7,
    slant=0.4,
    rotate=8.0,
    aspect=(0.8, 1.15),
    open_joins=0.15,
    overshoot=0.25,
    overshoot_length=(0.02, 0.05),
)
PRESSED_PEN = PenStyle(  # a ballpoint pressed unevenly: strong pressure swings, a compressed hand
    width=(2.5, 4.5),
    pressure=0.55,
    wobble=0.03,
    wobble_grid=4,
    slant=0.3,
    rotate=6.0,
    aspect=(0.75, 1.05),
    open_joins=0.1,
    overshoot=0.2,
    overshoot_length=(0.02, 0.05),
)
# The training styles a config may name (HandwritingSpec.font_only_pens).
TRAIN_PENS: dict[str, PenStyle] = {"train": TRAIN_PEN, "quick": QUICK_PEN, "pressed": PRESSED_PEN}


def skeleton_points(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points, joins, ends) of the ink's skeleton as N×2 float (x, y) arrays."""
    skeleton = skeletonize(ink > 0.5)
    counts = cv2.filter2D(skeleton.astype(np.float32), -1, NEIGHBOURS, borderType=cv2.BORDER_CONSTANT)
    counts -= skeleton  # neighbours only
    ys, xs = np.nonzero(skeleton)
    n = counts[ys, xs]
    points = np.stack([xs, ys], axis=1).astype(np.float32)
    return points, points[n >= 3], points[n == 1]


def distinct(points: np.ndarray, distance: float) -> np.ndarray:
    """The points, skipping any closer than `distance` to one already kept."""
    kept: list[np.ndarray] = []
    for point in points:
        if all(float(np.linalg.norm(point - k)) >= distance for k in kept):
            kept.append(point)
    return np.array(kept, np.float32).reshape(-1, 2)


def end_directions(points: np.ndarray, ends: np.ndarray, reach: float = 4.0) -> np.ndarray:
    """Unit vectors pointing out of each stroke end: away from the skeleton points near it."""
    directions = np.zeros_like(ends)
    for i, end in enumerate(ends):
        near = points[np.linalg.norm(points - end, axis=1) <= reach]
        away = end - near.mean(axis=0)
        norm = float(np.linalg.norm(away))
        directions[i] = away / norm if norm > 1e-6 else 0.0
    return directions


def smooth_field(rng: np.random.Generator, grid: int, shape: tuple[int, int]) -> np.ndarray:
    """A smooth random field in [-1, 1] over `shape` (h, w), bicubic from a coarse grid."""
    coarse = rng.uniform(-1.0, 1.0, size=(grid, grid)).astype(np.float32)
    return np.clip(cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC), -1.0, 1.0)


def _sample(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    h, w = field.shape
    xs = np.clip(points[:, 0].round().astype(int), 0, w - 1)
    ys = np.clip(points[:, 1].round().astype(int), 0, h - 1)
    return field[ys, xs]


@dataclass(frozen=True)
class Strokes:
    """Pen stamps: disc centres (N×2 x, y), radii (N) and, per stamp, the skeleton point it was drawn
    for (N×2, in the source ink's frame), so callers can tell which part of the glyph it belongs to."""

    points: np.ndarray
    radius: np.ndarray
    anchors: np.ndarray

    def moved(self, linear: np.ndarray, offset: np.ndarray, keep: np.ndarray | None = None) -> Strokes:
        """Points mapped by x ↦ linear·x + offset (the selected stamps only, with `keep`)."""
        keep = np.ones(len(self.points), bool) if keep is None else keep
        points = self.points[keep] @ np.asarray(linear, np.float32).T + np.asarray(offset, np.float32)
        return Strokes(points.astype(np.float32), self.radius[keep], self.anchors[keep])


def _with_overshoots(
    points: np.ndarray, ends: np.ndarray, rng: np.random.Generator, style: PenStyle
) -> tuple[np.ndarray, np.ndarray]:
    """Points with run-on stroke ends added, and each point's anchor (overshoots: their end)."""
    chosen = ends[rng.random(len(ends)) < style.overshoot]
    if not len(chosen):
        return points, points.copy()
    directions = end_directions(points, chosen)
    extra, anchors = [points], [points]
    for end, direction in zip(chosen, directions, strict=True):
        length = rng.uniform(*style.overshoot_length) * style.em
        steps = np.arange(1.0, length + 1.0, 1.0, dtype=np.float32)[:, None]
        extra.append(end + steps * direction)
        anchors.append(np.repeat(end[None], len(steps), axis=0))
    return np.concatenate(extra), np.concatenate(anchors)


def _open_joins(strokes: Strokes, joins: np.ndarray, rng: np.random.Generator, style: PenStyle) -> Strokes:
    opened = distinct(joins, MIN_JOIN_DISTANCE)
    opened = opened[rng.random(len(opened)) < style.open_joins][:MAX_OPEN_JOINS]
    if not len(opened):
        return strokes
    keep = np.ones(len(strokes.points), bool)
    gap = rng.uniform(1.0, 2.0) * float(np.mean(strokes.radius)) + 1.0
    for join in opened:
        keep &= np.linalg.norm(strokes.anchors - join, axis=1) > gap
    # Never erase much of the glyph: an open join is a small lift of the pen.
    if keep.mean() <= 0.7:
        return strokes
    return Strokes(strokes.points[keep], strokes.radius[keep], strokes.anchors[keep])


def pen_strokes(
    ink: np.ndarray, rng: np.random.Generator, style: PenStyle = TRAIN_PEN, width: float | None = None
) -> Strokes:
    """The ink's skeleton as pen stamps in the ink's own frame: wobbled, with pressure-varying radii
    around `width` (default: drawn from the style), open joins and overshoots. ValueError without ink."""
    points, joins, ends = skeleton_points(ink)
    if len(points) == 0:
        raise ValueError("nothing to redraw: the ink has no skeleton")
    points, anchors = _with_overshoots(points, ends, rng, style)
    h, w = ink.shape
    amplitude = rng.uniform(0.3, 1.0) * style.wobble * style.em
    wobble = np.stack([_sample(smooth_field(rng, style.wobble_grid, (h, w)), anchors) for _ in range(2)], 1)
    width = rng.uniform(*style.width) if width is None else width
    pressure = 1.0 + style.pressure * _sample(smooth_field(rng, style.wobble_grid + 2, (h, w)), anchors)
    radius = np.maximum(0.5, width * pressure / 2.0).astype(np.float32)
    strokes = Strokes((points + amplitude * wobble).astype(np.float32), radius, anchors)
    return _open_joins(strokes, joins, rng, style)


def hand_transform(rng: np.random.Generator, style: PenStyle) -> np.ndarray:
    """A 2×2 map of one writer's hand: rotation, slant (shear) and horizontal stretch."""
    angle = np.deg2rad(rng.uniform(-style.rotate, style.rotate))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shear = np.array([[1.0, rng.uniform(-style.slant, style.slant)], [0.0, 1.0]])
    return (rotation @ shear @ np.diag([rng.uniform(*style.aspect), 1.0])).astype(np.float32)


def stamp(*parts: Strokes, background: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Rasterise the stamps (float32 ink strength in [0, 1]) on a canvas holding all of them, and
    `background` (an ink image and the position of its top-left corner in the stamps' frame) under
    them."""
    points = np.concatenate([p.points for p in parts])
    radius = np.concatenate([p.radius for p in parts])
    margin = float(radius.max()) + 2.0
    low, high = points.min(axis=0) - margin, points.max(axis=0) + margin
    if background is not None:
        image, corner = background
        low = np.minimum(low, corner)
        high = np.maximum(high, corner + np.array(image.shape[::-1], np.float32))
    low = np.floor(low)
    size = np.ceil(high - low).astype(int) + 1
    canvas = np.zeros((int(size[1]), int(size[0])), np.uint8)
    scale = 1 << SUBPIXEL_BITS
    centres = ((points - low) * scale).round().astype(int)
    radii = (radius * scale).round().astype(int)
    for (x, y), r in zip(centres, radii, strict=True):
        cv2.circle(canvas, (int(x), int(y)), int(r), 255, -1, lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)
    ink = canvas.astype(np.float32) / 255.0
    if background is not None:
        image, corner = background
        top, left = round(float(corner[1] - low[1])), round(float(corner[0] - low[0]))
        region = ink[top : top + image.shape[0], left : left + image.shape[1]]
        np.maximum(region, image[: region.shape[0], : region.shape[1]], out=region)
    return ink


def redraw(ink: np.ndarray, rng: np.random.Generator, style: PenStyle = TRAIN_PEN) -> np.ndarray:
    """Ink strength (H×W float in [0, 1], 1 = ink) → the same glyph redrawn with a pen in a writer's
    hand, float32 in [0, 1]. Raises ValueError without ink."""
    strokes = pen_strokes(ink, rng, style)
    centre = strokes.points.mean(axis=0)
    linear = hand_transform(rng, style)
    return stamp(strokes.moved(linear, centre - linear @ centre))
