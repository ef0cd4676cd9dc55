"""Split a photo of a handwritten word, code or number into its characters, in reading order.

Pure numpy + OpenCV (no web framework). The ink is found by the shared preprocessing
(`ink_strength`: the same K-means ink mask a single-character upload gets), then:

    connected ink parts → the typical character height → dots and accents joined to the character
    whose columns they share, specks dropped → parts stacked in the same columns joined (broken
    strokes, a big i dot) → lines by vertical centre, top to bottom → left to right in each line
    → candidate cuts where touching characters may join (the columns with least ink)

Every piece between two candidate cuts leaves as its own ink-high image (ink = 255 on 0, like a
training scan), so the service classifies it with the very `preprocess` that single characters go
through; the reader (app.service.reading) then keeps the cuts the model is surer of.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from contract.preprocessing import NoInkError, PreprocessConfig, downscale, ink_strength, to_gray

Box = tuple[int, int, int, int]  # x, y, width, height


@dataclass(frozen=True)
class SegmentConfig:
    # Parts below this fraction of the largest part's area do not count when the typical
    # character height is measured (specks, dots).
    reference_area: float = 0.05
    # A part lower than `min_char_height` × the typical height is first taken for a dot, an
    # accent or a detached bar of the character it sits over or under; if there is none, it is a
    # character if its longer side reaches `min_char_size` × the typical height, else a speck.
    min_char_height: float = 0.4
    min_char_size: float = 0.3
    # Marks narrower and lower than this × the pen's stroke width are specks (paper texture,
    # noise), never dots: a pen's dot is at least about a stroke wide.
    min_dot: float = 0.6
    # How far (× the typical height) a dot may float above or below its character.
    attach_gap: float = 0.8
    # Two character-sized parts are one character when the narrower lies this much within the
    # other's columns and they are stacked (overlap in height by at most `stacked_overlap` of the
    # shorter, at most `merge_gap` × the typical height apart).
    merge_overlap: float = 0.6
    stacked_overlap: float = 0.5
    merge_gap: float = 0.4  # × the typical height, between stacked parts
    # Parts wider than `cut_width` × the typical height may be touching characters: they get up to
    # `cuts_per_height` candidate cuts per typical height of width (at most `max_cuts`), pieces at
    # least `min_piece` × the typical height wide (a 1 is narrow).
    cut_width: float = 0.5
    cuts_per_height: float = 4.0
    max_cuts: int = 6
    min_piece: float = 0.1
    # A new line starts where sorted vertical centres jump by more than this × the typical height.
    line_gap: float = 0.6
    # … unless this much of the part's height lies within the rows the line's ink spans so far.
    line_overlap: float = 0.5
    # A gap wider than this × the typical height between characters of a line is a space.
    word_gap: float = 0.9
    # Ink images get this × their longer side of empty margin (the ink stays a minority, as in a
    # single-character photo, so K-means keeps the polarity).
    margin: float = 0.5
    # More character-sized parts than this is no text (a texture, a photo): refused, not read.
    max_parts: int = 128


@dataclass(frozen=True)
class Glyph:
    """One character candidate."""

    box: Box  # in the input image's pixels
    ink: np.ndarray  # uint8 ink-high image of this character alone, with a margin


@dataclass(frozen=True)
class Blob:
    """One piece of ink: one character, or touching characters to be cut at some of its candidate
    cuts. `spans[(i, j)]` is the ink between cut i and cut j, where cut 0 is the left edge and cut
    `pieces` the right one; `spans[(0, pieces)]` is the whole (spans without ink are left out)."""

    line: int  # 0 = the top line
    space_before: bool  # a word gap separates it from the previous blob of its line
    pieces: int
    spans: dict[tuple[int, int], Glyph]
    height: float = 0.0  # the typical character height of the image, in input pixels

    @property
    def whole(self) -> Glyph:
        return self.spans[(0, self.pieces)]


class TooManyParts(ValueError):
    """The image holds far more separate ink parts than any text would."""


@dataclass
class _Part:
    """A set of connected components, in the ink map's pixels."""

    labels: list[int]
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def absorb(self, other: _Part) -> None:
        self.labels += other.labels
        self.x0, self.y0 = min(self.x0, other.x0), min(self.y0, other.y0)
        self.x1, self.y1 = max(self.x1, other.x1), max(self.y1, other.y1)


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of the ink in pixels: its area over half its boundary length."""
    ink = mask.astype(np.uint8)
    boundary = int((ink - cv2.erode(ink, np.ones((3, 3), np.uint8))).sum())
    return 2.0 * int(ink.sum()) / max(boundary, 1)


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    """Length of the overlap of [a0, a1) and [b0, b1) (negative: the gap between them)."""
    return min(a1, b1) - max(a0, b0)


def _stacked(a: _Part, b: _Part, ref: float, cfg: SegmentConfig) -> bool:
    """One part over the other in the same columns (a broken stroke, a big dot): one character."""
    x_shared = _overlap(a.x0, a.x1, b.x0, b.x1)
    y_shared = _overlap(a.y0, a.y1, b.y0, b.y1)
    return (
        x_shared >= cfg.merge_overlap * min(a.width, b.width)
        and y_shared <= cfg.stacked_overlap * min(a.height, b.height)
        and -y_shared <= cfg.merge_gap * ref
    )


def _merge_stacked(parts: list[_Part], ref: float, cfg: SegmentConfig) -> list[_Part]:
    """Join parts that share their columns, pass after pass until none do (broken strokes, big dots)."""
    merged = True
    while merged:
        merged = False
        alive = [True] * len(parts)
        for i, a in enumerate(parts):
            for j in range(i + 1, len(parts)):
                if alive[i] and alive[j] and _stacked(a, parts[j], ref, cfg):
                    a.absorb(parts[j])
                    alive[j] = False
                    merged = True
        parts = [p for p, keep in zip(parts, alive, strict=True) if keep]
    return parts


def _attach_small(small: list[_Part], chars: list[_Part], ref: float, cfg: SegmentConfig) -> list[_Part]:
    """Each dot, accent or detached bar joins the nearest character (vertically; then the one it
    shares most columns with) whose columns it shares. Of the rest, those big enough are
    characters of their own (returned); specks are dropped."""
    alone = []
    reach = 0.15 * ref  # a slanted i's dot lands a little to the side of the stem
    boxes = np.array([(c.x0, c.y0, c.x1, c.y1) for c in chars], np.float64).reshape(-1, 4)
    for part in small:
        shared = np.minimum(part.x1, boxes[:, 2] + reach) - np.maximum(part.x0, boxes[:, 0] - reach)
        gap = np.maximum(np.maximum(boxes[:, 1] - part.y1, part.y0 - boxes[:, 3]), 0)
        gap[shared <= 0] = np.inf
        order = np.lexsort((-shared, gap))
        if len(order) and gap[order[0]] <= cfg.attach_gap * ref:
            chars[int(order[0])].absorb(part)
        elif max(part.width, part.height) >= cfg.min_char_size * ref:
            alone.append(part)
    return alone


def _lines(parts: list[_Part], ref: float, cfg: SegmentConfig) -> list[list[_Part]]:
    """Lines top to bottom, each left to right. A part starts a new line where the sorted
    vertical centres jump, unless its ink lies mostly within the rows of the line so far: small
    letters beside a tall one (o, u beside t) have centres far apart, yet share one line's rows."""
    by_centre = sorted(parts, key=lambda p: (p.y0 + p.y1) / 2)
    lines: list[list[_Part]] = []
    previous = None
    top = bottom = 0
    for part in by_centre:
        centre = (part.y0 + part.y1) / 2
        jump = previous is None or centre - previous > cfg.line_gap * ref
        if jump and not (lines and _overlap(part.y0, part.y1, top, bottom) >= cfg.line_overlap * part.height):
            lines.append([])
            top, bottom = part.y0, part.y1
        lines[-1].append(part)
        top, bottom = min(top, part.y0), max(bottom, part.y1)
        previous = centre
    return [sorted(line, key=lambda p: (p.x0 + p.x1) / 2) for line in lines]


def cut_candidates(projection: np.ndarray, min_piece: int, most: int) -> list[int]:
    """Columns where touching characters may join: local minima of the ink per column, at least
    `min_piece` from either end and from each other, the `most` thinnest, left to right."""
    width = len(projection)
    if width < 2 * min_piece or most < 1:
        return []
    smooth = np.convolve(projection, np.ones(3), mode="same")  # sums: exact on pixel counts
    inner = np.arange(min_piece, width - min_piece + 1)
    lowest = (smooth[inner] <= smooth[inner - 1]) & (
        smooth[inner] <= smooth[np.minimum(inner + 1, width - 1)]
    )
    # A flat valley is one candidate: its middle column.
    runs = np.split(inner[lowest], np.flatnonzero(np.diff(inner[lowest]) > 1) + 1)
    minima = [int(run[len(run) // 2]) for run in runs if len(run)]
    chosen: list[int] = []
    for cut in sorted(minima, key=lambda c: (smooth[c], abs(c - width / 2))):
        if len(chosen) < most and all(abs(cut - c) >= min_piece for c in chosen):
            chosen.append(cut)
    return sorted(chosen)


class _Canvas:
    """The ink map with its component labels; cuts glyph images out of it."""

    def __init__(self, strength: np.ndarray, labels: np.ndarray, scale: float, cfg: SegmentConfig) -> None:
        self.strength = strength
        self.labels = labels
        self.scale = scale  # input pixels per ink-map pixel
        self.cfg = cfg

    def glyph(self, part: _Part, columns: tuple[int, int] | None = None) -> Glyph | None:
        """The part's ink alone (within `columns` of the map, if given), or None if empty."""
        x0, x1 = columns or (part.x0, part.x1)
        region = (slice(part.y0, part.y1), slice(x0, x1))
        labels = self.labels[region]
        own = np.isin(labels, part.labels)
        if not own.any():
            return None
        ys, xs = np.nonzero(own)
        top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        own, labels = own[top:bottom, left:right], labels[top:bottom, left:right]
        strength = self.strength[region][top:bottom, left:right]
        # One pixel around the part keeps its soft edges; other parts' ink stays out.
        near = cv2.dilate(own.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        keep = near & ~((labels > 0) & ~own)
        crop = np.round(strength * keep * 255).astype(np.uint8)
        pad = max(2, round(self.cfg.margin * max(crop.shape)))
        ink = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        x, y, w, h = (round(v * self.scale) for v in (x0 + left, part.y0 + top, right - left, bottom - top))
        return Glyph(box=(x, y, w, h), ink=ink)


def ink_map(image: np.ndarray, cfg: PreprocessConfig) -> tuple[np.ndarray, float]:
    """The shared ink strength map of the (downscaled) image, and input pixels per map pixel."""
    gray = to_gray(image)
    small = downscale(gray, cfg.max_side)
    return ink_strength(small, cfg), gray.shape[1] / small.shape[1]


def segment(image: np.ndarray, cfg: PreprocessConfig, seg: SegmentConfig | None = None) -> list[Blob]:
    """Image array → its characters in reading order. Raises NoInkError for a blank image and
    TooManyParts for one with more ink parts than `seg.max_parts`."""
    seg = seg or SegmentConfig()
    strength, scale = ink_map(image, cfg)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (strength > 0.5).astype(np.uint8), connectivity=8
    )
    if count <= 1:
        raise NoInkError("no ink found: the image has no marks that stand out from the background")
    stats = stats[1:]
    areas = stats[:, cv2.CC_STAT_AREA]
    heights = stats[:, cv2.CC_STAT_HEIGHT]
    ref = float(np.median(heights[areas >= seg.reference_area * areas.max()]))
    chars: list[_Part] = []
    small: list[_Part] = []
    for i in np.argsort(stats[:, cv2.CC_STAT_LEFT], kind="stable"):
        x, y, w, h = (int(v) for v in stats[i, :4])
        part = _Part([int(i) + 1], x, y, x + w, y + h)
        fragment = h < seg.min_char_height * ref or max(w, h) < seg.min_char_size * ref
        (small if fragment else chars).append(part)
    if len(chars) > seg.max_parts:
        raise TooManyParts(f"the image holds {len(chars)} separate marks; at most {seg.max_parts} are read")
    smallest_dot = seg.min_dot * _stroke_width(np.isin(labels, [p.labels[0] for p in chars]))
    small = [p for p in small if max(p.width, p.height) >= smallest_dot]
    chars = _merge_stacked(chars, ref, seg)
    chars += _attach_small(small, chars, ref, seg)
    if len(chars) > seg.max_parts:
        raise TooManyParts(f"the image holds {len(chars)} separate marks; at most {seg.max_parts} are read")
    canvas = _Canvas(strength, labels, scale, seg)
    blobs = []
    for number, line in enumerate(_lines(chars, ref, seg)):
        gaps = [b.x0 - a.x1 for a, b in itertools.pairwise(line)]
        # A word gap is wide for the script's size and for this writer's own spacing.
        word_gap = max(seg.word_gap * ref, 2.0 * float(np.median(gaps))) if gaps else 0.0
        for i, part in enumerate(line):
            pieces, spans = _spans(canvas, part, ref, seg)
            if (0, pieces) in spans:
                space = i > 0 and gaps[i - 1] > word_gap
                blobs.append(Blob(number, space, pieces, spans, ref * scale))
    return blobs


def _spans(
    canvas: _Canvas, part: _Part, ref: float, seg: SegmentConfig
) -> tuple[int, dict[tuple[int, int], Glyph]]:
    """The part's candidate cuts, and the glyph between every two of them (the whole included)."""
    cuts: list[int] = []
    if part.width > seg.cut_width * ref:
        own = np.isin(canvas.labels[part.y0 : part.y1, part.x0 : part.x1], part.labels)
        most = min(seg.max_cuts, max(1, round(seg.cuts_per_height * part.width / ref)))
        cuts = cut_candidates(own.sum(axis=0).astype(np.float64), max(2, round(seg.min_piece * ref)), most)
    edges = [part.x0, *(part.x0 + c for c in cuts), part.x1]
    spans = {}
    smallest = seg.min_char_size * ref * canvas.scale
    for i, j in itertools.combinations(range(len(edges)), 2):
        glyph = canvas.glyph(part, (edges[i], edges[j]))
        # A sliver too small to be a character is only ever read as part of a wider span.
        whole = (i, j) == (0, len(edges) - 1)
        if glyph is not None and (whole or max(glyph.box[2:]) >= smallest):
            spans[(i, j)] = glyph
    return len(edges) - 1, spans
