"""The one preprocessing path, shared by training, evaluation and serving.

Pure numpy + OpenCV (no web framework, no torch). Any image array goes in; the model's input
tensor comes out:

    grayscale → downscale → flatten the lighting → polarity (the paper covers the border, else the
    minority cluster is ink) → contrast against the local paper, printed rules removed → K-means
    (K = 2) ink mask, ink only if it stands out from the paper's own noise → drop specks → crop to
    the ink → normalise stroke width → fit into a 20×20 box keeping aspect
    → place in 28×28 by centre of mass (MNIST/EMNIST framing) → Gaussian blur → (x - mean) / std

The ink is found on a small copy of the image (`work_side`): the model sees 20×20 pixels of it,
so more costs time and buys nothing. A mark too small at that size is found again, closer, on a
crop around it at up to `max_side`.

Every knob lives in `PreprocessConfig`, which the model manifest records, so the service runs
exactly what the model was trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


class NoInkError(ValueError):
    """The image holds no ink that stands out from its background (blank or flat photo)."""


@dataclass(frozen=True)
class PreprocessConfig:
    # Photos are downscaled so their longer side is at most this before any other work: the
    # finest detail ever looked at.
    max_side: int = 1024
    # The ink is found at this longer side first (0: at max_side, in one pass) ...
    work_side: int = 160
    # ... and again, closer, on a crop three times its size, when it spans fewer pixels than this.
    min_ink_side: int = 48
    # Lighting is flattened by subtracting a median-filtered background, computed at this size
    # with a window of `background_window` × the shorter side (edge-preserving: a table around
    # the paper is background too, not ink). That decides the polarity (the minority cluster).
    background_side: int = 256
    background_window: float = 0.5
    min_background_window: int = 63
    # That median is smooth by construction, so it may be taken on a copy scaled down by a whole
    # factor until its window spans at most this many pixels (on a 160 px work image: half the
    # side, a quarter of the time), then scaled back up. 0: at `background_side` itself, as the
    # models trained before this knob recorded.
    median_max_window: int = 0
    # Then, polarity known, the ink's background is a morphological closing (dark ink) or opening
    # (light ink) with a square of `paper_window` × the longer side: unlike a median it stays
    # paper under a bold marker that fills most of a tight crop (only strokes narrower than the
    # square are ink).
    paper_window: float = 0.4
    min_paper_window: int = 15
    kmeans_max_iter: int = 100
    # Is there ink at all? The K-means ink centre must stand out from the paper's centre by
    # `noise_snr` × the paper's own noise (a robust σ of the paper cluster: sensor noise, grain,
    # JPEG) and by at least `min_faint_contrast` grey levels: a faint pencil stroke on clean grey
    # paper is ink, blank paper and noise are not. `min_contrast` is always enough, unless it is
    # under `pure_noise_snr` × σ: K-means splits pure noise into centres about 2.6 such σ apart.
    # noise_snr 0: the fixed `min_contrast` alone (with min_faint_contrast = min_contrast, the test
    # of older models).
    min_contrast: float = 30.0
    min_faint_contrast: float = 12.0
    noise_snr: float = 4.0
    pure_noise_snr: float = 3.0
    # Ink is strokes: its largest part must be at least this many times longer than wide (area /
    # mean width²). Salt noise, and the blob a shadow's edge leaves where it meets the image's
    # border, are not. 0: not checked.
    min_elongation: float = 1.5
    # The paper is the cluster that covers at least this share of the image's border (a bold
    # marker may fill most of a tight crop, but seldom its whole edge); when the border is mixed,
    # the minority cluster is the ink. 0 or more than 1: the minority alone, as older models.
    border_paper_share: float = 0.8
    # Printed rules and grids (dark lines crossing the whole image) are taken out before the ink
    # is measured: ink-coloured runs along a row or a column at least `rule_run` × that side long,
    # joined into straight lines that reach from edge to edge (`rule_span` × the side at least).
    # 0: rules are kept, as older models.
    rule_run: float = 0.15
    rule_span: float = 0.9
    # ... and that are level: a page's rules stay within a few degrees of the image's rows in any
    # photo a person crops one character from, while a glyph's stroke that spans a tightly cut crop
    # (a 7's top, a leaning 1, an arc) seldom is. The largest |slope| (rows per column) a rule may
    # have; a rise of 2 pixels over the whole width is always allowed (pixel steps on a narrow
    # image). 0: any slope, as older models.
    rule_max_slope: float = 0.05
    # Connected ink parts smaller than this fraction of the largest part are specks.
    min_component_fraction: float = 0.02
    # Stroke width is measured on the crop fitted into `stroke_work_size`, then clamped into
    # [min_stroke, max_stroke] pixels of the final `box_size` scale (thin pen on a big photo
    # would otherwise vanish; a marker would fill the box).
    stroke_work_size: int = 80
    min_stroke: float = 2.5
    max_stroke: float = 5.0
    max_stroke_change: int = 4  # at most this many work-size pixels dilated/eroded per side
    box_size: int = 20
    canvas_size: int = 28
    blur_sigma: float = 0.5
    mean: float = 0.15
    std: float = 0.3


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any H×W, H×W×1, H×W×3 (RGB) or H×W×4 (RGBA) array of uint8/uint16/float → uint8 grey.

    Transparent pixels are composited onto a background that contrasts with the opaque ones,
    so a drawing on a transparent canvas keeps its ink whatever its colour.
    """
    img = np.asarray(image)
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return img
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(f"unsupported image shape {img.shape}")
    if img.shape[2] == 1:
        return img[:, :, 0]
    gray = cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_RGB2GRAY)
    if img.shape[2] == 3:
        return gray
    alpha = img[:, :, 3].astype(np.float32) / 255.0
    opaque = alpha > 0.5
    if opaque.all():
        return gray
    paper = 0.0 if opaque.any() and gray[opaque].mean() > 127 else 255.0
    return np.clip(gray * alpha + paper * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)


def downscale(gray: np.ndarray, max_side: int) -> np.ndarray:
    h, w = gray.shape
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return gray
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def flatten_background(gray: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Signed int16 difference to the local background: paper ≈ 0, ink far from 0 (either sign)."""
    h, w = gray.shape
    small = downscale(gray, cfg.background_side)
    window = max(int(cfg.background_window * min(small.shape)), cfg.min_background_window) | 1
    if window >= min(small.shape):
        # Tiny images: the window covers the whole image, so the background is its median.
        background = np.full_like(gray, int(np.median(small)))
    else:
        if cfg.median_max_window and window > cfg.median_max_window:
            factor = math.ceil(window / cfg.median_max_window)  # whole: OpenCV's fast area resize
            size = (max(1, round(small.shape[1] / factor)), max(1, round(small.shape[0] / factor)))
            small = cv2.resize(small, size, interpolation=cv2.INTER_AREA)
            window = (window // factor) | 1
        background = cv2.medianBlur(small, max(3, window))
        if background.shape != gray.shape:
            background = cv2.resize(background, (w, h), interpolation=cv2.INTER_LINEAR)
    return gray.astype(np.int16) - background.astype(np.int16)


def ink_contrast(gray: np.ndarray, ink_is_dark: bool, cfg: PreprocessConfig) -> np.ndarray:
    """Int16 contrast of each pixel against the paper around it: ≈ 0 on paper, > 0 on ink."""
    h, w = gray.shape
    small = downscale(gray, cfg.background_side)
    side = max(round(cfg.paper_window * max(small.shape)), cfg.min_paper_window)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    op = cv2.MORPH_CLOSE if ink_is_dark else cv2.MORPH_OPEN
    paper = cv2.morphologyEx(small, op, kernel, borderType=cv2.BORDER_REPLICATE)
    if paper.shape != gray.shape:
        paper = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR)
    contrast = paper.astype(np.int16) - gray.astype(np.int16)
    return contrast if ink_is_dark else -contrast


def intensity_histogram(values: np.ndarray, offset: int) -> np.ndarray:
    """Float64 counts of `values + offset` (non-negative ints), index = value + offset, up to the
    highest value present. Counts stay exact through OpenCV's float32 histogram: whole numbers up
    to 2^24, far more pixels than max_side² has."""
    if values.dtype == np.uint8 and offset == 0:
        shifted, bins = np.ascontiguousarray(values), 256
    elif values.dtype == np.int16 and offset == 255 and values.size:
        # A difference of two uint8 images lies in [-255, 255]; OpenCV's histogram takes no signed
        # type but is several times faster than np.bincount's cast to intp, so shift and view.
        shifted, bins = np.ascontiguousarray(values + np.int16(offset)).view(np.uint16), 511
        if int(shifted.max()) >= bins:
            shifted = None
    else:
        shifted = None
    if shifted is None:
        return np.bincount((values.ravel() + offset).astype(np.intp)).astype(np.float64)
    hist = cv2.calcHist([shifted], [0], None, [bins], [0, bins]).ravel()
    return hist[: np.flatnonzero(hist)[-1] + 1].astype(np.float64)


@dataclass(frozen=True)
class Clusters:
    """`kmeans_2`'s answer, with what was needed to reach it (reused by the noise estimate)."""

    lo: float
    hi: float
    n_lo: float
    n_hi: float
    split: int  # histogram index (value + offset) of the last level in the low cluster
    cumulative_count: np.ndarray


def kmeans_hist(hist: np.ndarray, offset: int, max_iter: int) -> Clusters:
    """`kmeans_2` on a histogram from `intensity_histogram`."""
    present = np.flatnonzero(hist)
    cumulative_count = np.cumsum(hist)
    lo = float(present[0] - offset)
    hi = float(present[-1] - offset)
    if lo == hi:
        return Clusters(lo, hi, float(cumulative_count[-1]), 0.0, int(present[0]), cumulative_count)
    levels = np.arange(hist.size, dtype=np.float64) - offset
    # Python floats from here on: the same IEEE doubles as numpy's scalars, without their overhead
    # in a loop that may run many times.
    counts = cumulative_count.tolist()
    sums = np.cumsum(hist * levels).tolist()
    total_count, total_sum = counts[-1], sums[-1]
    for _ in range(max_iter):
        # Ties go to the low centre, as in scikit-learn (argmin picks the first).
        split = math.floor((lo + hi) / 2 + offset)
        n_lo = counts[split]
        new_lo = sums[split] / n_lo
        new_hi = (total_sum - sums[split]) / (total_count - n_lo)
        if new_lo == lo and new_hi == hi:
            break
        lo, hi = new_lo, new_hi
    split = math.floor((lo + hi) / 2 + offset)
    n_lo = counts[split]
    return Clusters(lo, hi, n_lo, total_count - n_lo, split, cumulative_count)


def kmeans_2(values: np.ndarray, offset: int, max_iter: int) -> tuple[float, float, float, float]:
    """Lloyd's K-means with K = 2 on integer intensities, run on their histogram.

    Same clusters as K-means on the pixels with centres initialised at the minimum and maximum
    (deterministic; O(levels) per iteration). `values + offset` must be non-negative ints.
    Returns (low centre, high centre, low count, high count).
    """
    c = kmeans_hist(intensity_histogram(values, offset), offset, max_iter)
    return c.lo, c.hi, c.n_lo, c.n_hi


def kmeans_split(lo: float, hi: float) -> float:
    """The value at and below which `kmeans_2`'s pixels belong to the low centre."""
    return math.floor((lo + hi) / 2)


def quartile_sigma(cumulative: np.ndarray, size: float) -> float:
    """`robust_sigma` of the first `size` values of a histogram, given its cumulative counts."""
    if size < 4:
        return 0.0
    q1, q3 = np.searchsorted(cumulative, [0.25 * size, 0.75 * size])
    return float(q3 - q1) / 1.349


def robust_sigma(values: np.ndarray) -> float:
    """σ of the values' bulk, blind to a minority of outliers: the interquartile range / 1.349.

    `values` are integers in [-255, 255]; quartiles read off their histogram (np.percentile's
    sort costs more than the rest of the ink search on a small crop)."""
    if values.size < 4:
        return 0.0
    cumulative = np.cumsum(np.bincount((values.ravel() + 255).astype(np.intp), minlength=511))
    return quartile_sigma(cumulative, values.size)


def noise_floor(sigma: float, cfg: PreprocessConfig) -> float:
    """How far the ink centre must lie from the paper centre, given the paper's noise σ."""
    # Paper texture, grain and a stroke's soft edges widen the paper cluster too, so its σ may be
    # overestimated: `min_contrast` stays enough unless the noise alone could reach it.
    enough = max(cfg.min_contrast, cfg.pure_noise_snr * sigma)
    return min(enough, max(cfg.min_faint_contrast, cfg.noise_snr * sigma))


def min_ink_contrast(paper_values: np.ndarray, cfg: PreprocessConfig) -> float:
    """How far the ink centre must lie from the paper centre, given the paper's own noise."""
    if cfg.noise_snr <= 0:
        return cfg.min_contrast
    return noise_floor(robust_sigma(paper_values), cfg)


def border_polarity(gray: np.ndarray, cfg: PreprocessConfig) -> bool | None:
    """Is the ink dark, judged by the image's border? None: the border is mixed.

    K-means (K = 2) on the grey levels themselves: under a bold marker that fills most of a tight
    crop, the flattened image's background is the ink, not the paper."""
    if not 0 < cfg.border_paper_share <= 1 or min(gray.shape) < 3:
        return None
    lo, hi, _, _ = kmeans_2(gray, offset=0, max_iter=cfg.kmeans_max_iter)
    # Paper shows at the border of any crop but the tightest; a glyph touches it at a few strokes.
    ring = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    low_share = float(np.mean(ring <= kmeans_split(lo, hi)))
    if low_share >= cfg.border_paper_share:
        return False
    if 1 - low_share >= cfg.border_paper_share:
        return True
    return None


def contrast_clusters(contrast: np.ndarray, cfg: PreprocessConfig) -> Clusters:
    """K-means (K = 2) on a contrast map (int16, ink > 0): paper below, ink above."""
    return kmeans_hist(intensity_histogram(contrast, 255), 255, cfg.kmeans_max_iter)


def clusters_evidence(clusters: Clusters, cfg: PreprocessConfig) -> tuple[float, float, float]:
    """(paper centre, ink centre, the least ink centre that is ink) of `contrast_clusters`.

    The paper's noise is read off the same histogram: the paper cluster is its first levels."""
    if cfg.noise_snr <= 0:
        return clusters.lo, clusters.hi, cfg.min_contrast
    sigma = quartile_sigma(clusters.cumulative_count, clusters.n_lo)
    return clusters.lo, clusters.hi, noise_floor(sigma, cfg)


def contrast_evidence(contrast: np.ndarray, cfg: PreprocessConfig) -> tuple[float, float, float]:
    """K-means on a contrast map: (paper centre, ink centre, the least ink centre that is ink)."""
    return clusters_evidence(contrast_clusters(contrast, cfg), cfg)


def _rule_band(ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """A rule's centre row at each of its columns (a straight line fitted robustly, so a stroke
    resting on the rule does not pull it), its thickness and its slope (rows per column):
    (columns, centres, thickness, slope)."""
    columns, inverse, counts = np.unique(xs, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ys)
    middle = sums / counts
    thickness = float(np.median(counts))
    keep = np.ones(columns.size, bool)
    for _ in range(2):  # the columns a stroke thickens are outliers: fit again without them
        slope, intercept = (
            np.polyfit(columns[keep], middle[keep], 1) if keep.sum() >= 2 else (0.0, middle.mean())
        )
        keep = np.abs(middle - (slope * columns + intercept)) <= max(1.0, thickness / 2)
    return columns, slope * columns + intercept, thickness, float(slope)


def _remove_horizontal_rules(out: np.ndarray, threshold: float, cfg: PreprocessConfig) -> bool:
    """Rules along the rows of `out` (float32, ink > 0) taken out in place; whether any were."""
    h, w = out.shape
    run = max(3, round(cfg.rule_run * w))
    if w < 8 or h < 3:
        return False
    level = np.clip(out, 0, 255).astype(np.uint8)
    runs = cv2.morphologyEx(level, cv2.MORPH_OPEN, np.ones((1, run), np.uint8))
    long = runs > threshold
    # Cheap first: a rule leaves long runs in (nearly) every column, the first and last included.
    covered = np.asarray(long.any(axis=0))
    if covered.mean() < cfg.rule_span or not (covered[:2].any() and covered[-2:].any()):
        return False
    count, labels, stats, _ = cv2.connectedComponentsWithStats(long.astype(np.uint8), connectivity=8)
    found = False
    for k in range(1, count):
        left, width = stats[k, cv2.CC_STAT_LEFT], stats[k, cv2.CC_STAT_WIDTH]
        # A rule runs on beyond the crop; a stroke, even a long bar, ends inside it.
        if width < cfg.rule_span * w or left > 1 or left + width < w - 1:
            continue
        ys, xs = np.nonzero(labels == k)
        columns, centres, thickness, slope = _rule_band(ys, xs)
        if cfg.rule_max_slope > 0 and abs(slope) > max(cfg.rule_max_slope, 2.0 / w):
            continue  # a glyph's stroke, not a page's rule
        # The rule's own darkness: a stroke crossing it keeps what it has beyond that.
        on_centre = np.abs(ys - np.interp(xs, columns, centres)) <= max(0.5, thickness / 2 - 0.5)
        rule_level = float(np.median(runs[ys[on_centre], xs[on_centre]])) if on_centre.any() else threshold
        rows = np.arange(h)[:, None]
        centre_at = np.interp(np.arange(w), columns, centres)[None, :]
        # One pixel more each side: the rule's soft edges (each at its own, lower, level).
        band = np.abs(rows - centre_at) <= thickness / 2 + 1
        rest = np.where(band, out - np.minimum(runs, rule_level), out)
        # The gap the rule leaves in a crossing stroke is bridged where the stroke goes on both sides.
        bridge = np.ones((round(thickness) + 4, 1), np.uint8)
        bridged = cv2.morphologyEx(np.clip(rest, 0, None).astype(np.float32), cv2.MORPH_CLOSE, bridge)
        out[:] = np.where(band, np.maximum(rest, np.minimum(bridged, out)), out)
        found = True
    return found


def rules_possible(contrast: np.ndarray, threshold: float, cfg: PreprocessConfig) -> tuple[bool, bool]:
    """Whether rules along the rows, and along the columns, may be there at all: cheap and never
    wrong the other way. A rule's long runs are ink-dark pixels in (nearly) every column it
    crosses, the first and the last included; a glyph in the middle of its paper leaves most
    columns and rows without any, and then the rule search is skipped."""
    if threshold < 0:  # every clipped level would pass: nothing can be ruled out here
        return True, True
    h, w = contrast.shape
    if h == 0 or w == 0:
        return False, False
    # Is any pixel of a column (of a row) ink-dark: its maximum is (OpenCV's reduce: a fraction of
    # numpy's time on a small image).
    column_max = cv2.reduce(contrast, 0, cv2.REDUCE_MAX).ravel()
    row_max = cv2.reduce(contrast, 1, cv2.REDUCE_MAX).ravel()

    def covers(dark_at: np.ndarray, length: int, across: int) -> bool:
        if length < 8 or across < 3:
            return False
        # OpenCV opens with an even kernel's anchor off centre, so a long run may sit a pixel off
        # the dark pixels it comes from: the test widens them by one each side.
        hit = dark_at.copy()
        hit[1:] |= dark_at[:-1]
        hit[:-1] |= dark_at[1:]
        return bool(hit.mean() >= cfg.rule_span and hit[:2].any() and hit[-2:].any())

    return covers(column_max > threshold, w, h), covers(row_max > threshold, h, w)


def without_rules(
    contrast: np.ndarray, clusters: Clusters, cfg: PreprocessConfig
) -> tuple[np.ndarray, Clusters]:
    """`remove_rules` given the contrast's K-means, and the K-means of what it returns (the same
    one when no rule was found)."""
    if cfg.rule_run <= 0:
        return contrast, clusters
    # What is ink-dark here: the K-means split between paper and everything darker (rules included;
    # on a small crop the rules may cover a third of it, too many for a robust noise estimate).
    threshold = max(cfg.min_faint_contrast, (clusters.lo + clusters.hi) / 2)
    along_rows, along_columns = rules_possible(contrast, threshold, cfg)
    if not (along_rows or along_columns):
        return contrast, clusters
    out = contrast.astype(np.float32)
    # Removing rules only lowers the contrast, so what the test ruled out stays ruled out.
    rows = along_rows and _remove_horizontal_rules(out, threshold, cfg)
    transposed = np.ascontiguousarray(out.T)
    columns = along_columns and _remove_horizontal_rules(transposed, threshold, cfg)
    if not (rows or columns):
        return contrast, clusters
    removed = np.clip(np.rint(transposed.T), -255, 255).astype(np.int16)
    return removed, contrast_clusters(removed, cfg)


def remove_rules(contrast: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """The contrast (int16, ink > 0) without printed rules: straight lines crossing (nearly) the
    whole image along the rows or the columns. A stroke crossing a rule keeps what is darker than
    the rule, and the gap the rule leaves in it is bridged where the stroke goes on both sides."""
    if cfg.rule_run <= 0:
        return contrast
    return without_rules(contrast, contrast_clusters(contrast, cfg), cfg)[0]


def ink_evidence(
    gray: np.ndarray, ink_is_dark: bool, cfg: PreprocessConfig
) -> tuple[np.ndarray, float, float, float]:
    """The contrast for one polarity, rules removed, with its (paper, ink, least ink) centres."""
    contrast = ink_contrast(gray, ink_is_dark, cfg)
    contrast, clusters = without_rules(contrast, contrast_clusters(contrast, cfg), cfg)
    return (contrast, *clusters_evidence(clusters, cfg))


def ink_strength(gray: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Float32 map in [0, 1]: 1 = ink, 0 = paper, whatever the polarity and lighting.

    The paper's grey covers the image's border (else: K-means (K = 2) on the flattened
    intensities, the minority cluster is the ink), which gives the polarity. K-means again on the
    contrast against the paper (`ink_contrast`, printed rules removed) separates ink from paper;
    each test of "is there ink" is relative to the paper's own noise. Pixels are scaled linearly
    between the two centres, so anti-aliased edges stay soft.
    """
    diff = flatten_background(gray, cfg)
    lo, hi, n_lo, n_hi = kmeans_2(diff, offset=255, max_iter=cfg.kmeans_max_iter)
    # Only a flat image stops here: whether what stands out is ink is judged below, against the
    # paper right around it, which no lighting gradient or shadow reaches.
    if hi - lo < cfg.min_faint_contrast:
        raise NoInkError("no ink found: the image has no marks that stand out from the background")
    dark = border_polarity(gray, cfg)
    mixed = dark is None
    if dark is None:
        dark = n_lo <= n_hi  # a mixed border: the minority cluster is the ink ...
    contrast, paper, ink, least = ink_evidence(gray, dark, cfg)
    if mixed and 0 < cfg.border_paper_share <= 1:
        # ... unless the other polarity's strokes stand out far more from their own paper noise
        # (a shadow's edge across a small crop makes the lit paper the minority).
        other, o_paper, o_ink, o_least = ink_evidence(gray, not dark, cfg)
        if (o_ink - o_paper) / max(o_least, 1e-6) > 1.5 * (ink - paper) / max(least, 1e-6):
            contrast, paper, ink, least = other, o_paper, o_ink, o_least
    if ink - paper < least:
        raise NoInkError("no ink found: the image has no marks that stand out from the background")
    strength = (contrast.astype(np.float32) - paper) / (ink - paper)
    return np.clip(strength, 0.0, 1.0)


def connected_parts(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """cv2.connectedComponentsWithStats, 8-connected, with 16-bit labels where they cannot run out
    (fewer pixels than 2^16): the same parts and labels, in much less time."""
    ltype = cv2.CV_16U if mask.size < 65535 else cv2.CV_32S
    return cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=ltype)


def remove_specks(strength: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Keep the ink parts that are not specks; zero everything else (paper texture included).
    Raises NoInkError when the largest part is a blob, not a stroke (see `keep_parts`)."""
    kept, strokes = keep_parts(strength, cfg)
    if not strokes:
        raise NoInkError("no ink found: the marks are specks or blobs, not strokes")
    return kept


def keep_parts(strength: np.ndarray, cfg: PreprocessConfig) -> tuple[np.ndarray, bool]:
    """The ink parts that are not specks (everything else zeroed), and whether the largest is a
    stroke rather than a blob (always, with `min_elongation` 0)."""
    mask = (strength > 0.5).astype(np.uint8)
    count, labels, stats, _ = connected_parts(mask)
    if count <= 1:
        raise NoInkError("no ink found: the image has no marks that stand out from the background")
    areas = stats[1:, cv2.CC_STAT_AREA]
    strokes = True
    if cfg.min_elongation > 0:
        k = 1 + int(np.argmax(areas))
        # Its bounding box and a pixel around it (the image's own edge where the box meets it,
        # so the erosion in stroke_width sees what it sees on the whole image).
        x, y, w, h = stats[k, :4]
        y0, x0 = max(0, y - 1), max(0, x - 1)
        part = labels[y0 : y + h + 1, x0 : x + w + 1] == k
        strokes = bool(areas.max() >= cfg.min_elongation * stroke_width(part.astype(np.float32)) ** 2)
    keep = np.zeros(count, dtype=np.uint8)
    keep[1:] = areas >= cfg.min_component_fraction * areas.max()
    kept = keep[labels]
    # One pixel of margin keeps the soft edges of the kept strokes.
    near = cv2.dilate(kept, np.ones((3, 3), np.uint8))
    return strength * near, strokes


def ink_box(strength: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the ink, bottom and right exclusive."""
    mask = (strength > 0.5).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0:
        raise NoInkError("no ink found: the image has no marks that stand out from the background")
    return y, y + h, x, x + w


def crop_to_ink(strength: np.ndarray) -> np.ndarray:
    top, bottom, left, right = ink_box(strength)
    return strength[top:bottom, left:right]


def find_ink(gray: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Grey image (longer side ≤ max_side) → float32 ink strength cropped to the ink.

    Found at `work_side`; a mark smaller than `min_ink_side` there is found again on a crop of
    three times its size around it, at the resolution of `gray`, where it has more pixels.
    """
    work = downscale(gray, cfg.work_side) if cfg.work_side else gray
    strength, strokes = keep_parts(ink_strength(work, cfg), cfg)
    top, bottom, left, right = ink_box(strength)
    first_look = strength[top:bottom, left:right]
    if max(bottom - top, right - left) >= cfg.min_ink_side or work.shape == gray.shape:
        return _strokes_only(first_look, strokes)
    # Each axis has its own ratio: `downscale` rounds each side, so on a strip a few pixels high
    # the vertical one is far from the horizontal one (8 → 2 rows is 4×, 520 → 160 columns 3.25×),
    # and the vertical ratio applied to x put the crop past the image's right edge.
    scale_y, scale_x = gray.shape[0] / work.shape[0], gray.shape[1] / work.shape[1]
    centre_y, centre_x = (top + bottom) / 2 * scale_y, (left + right) / 2 * scale_x
    half = 1.5 * max((bottom - top) * scale_y, (right - left) * scale_x)
    y0, y1 = max(0, round(centre_y - half)), min(gray.shape[0], round(centre_y + half))
    x0, x1 = max(0, round(centre_x - half)), min(gray.shape[1], round(centre_x + half))
    if y1 <= y0 or x1 <= x0:  # nothing to look at closer (rounding at an edge): keep the first look
        return _strokes_only(first_look, strokes)
    closer = downscale(gray[y0:y1, x0:x1], cfg.work_side)
    try:
        near, near_strokes = keep_parts(ink_strength(closer, cfg), cfg)
        crop = crop_to_ink(near)
    except NoInkError:  # the close-up lost it (e.g. too little paper around): keep the first look
        return _strokes_only(first_look, strokes)
    # A small mark may be a blob of a few pixels at work size and a stroke close up: either look
    # seeing a stroke is enough.
    return _strokes_only(first_look if not near_strokes and strokes else crop, strokes or near_strokes)


def _strokes_only(crop: np.ndarray, strokes: bool) -> np.ndarray:
    if not strokes:
        raise NoInkError("no ink found: the marks are specks or blobs, not strokes")
    return crop


def fit(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so the longer side equals `size`, keeping the aspect ratio."""
    h, w = image.shape
    scale = size / max(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, new, interpolation=interpolation)


def stroke_width(strength: np.ndarray) -> float:
    """Mean stroke width in pixels: ink area / half its boundary length (2 px at least)."""
    mask = (strength > 0.5).astype(np.uint8)
    area = int(mask.sum())
    if area == 0:
        return 0.0
    boundary = int((mask - cv2.erode(mask, np.ones((3, 3), np.uint8))).sum())
    return 2.0 * area / max(boundary, 1)


def normalise_stroke(crop: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Fit the crop to the working size and dilate/erode its strokes into the target range."""
    work = fit(crop, cfg.stroke_work_size)
    to_box = cfg.box_size / cfg.stroke_work_size
    width = stroke_width(work) * to_box
    if width < cfg.min_stroke:
        radius = round((cfg.min_stroke - width) / to_box / 2)
        op = cv2.dilate
    elif width > cfg.max_stroke:
        radius = round((width - cfg.max_stroke) / to_box / 2)
        op = cv2.erode
    else:
        return work
    radius = min(radius, cfg.max_stroke_change)
    if radius < 1:
        return work
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    changed = op(work, kernel)
    # Never erode a stroke away entirely.
    return changed if changed.max() > 0.5 else work


def place_by_centre_of_mass(box: np.ndarray, canvas_size: int) -> np.ndarray:
    h, w = box.shape
    total = float(box.sum())
    ys, xs = np.mgrid[0:h, 0:w]
    cy, cx = (float((ys * box).sum()) / total, float((xs * box).sum()) / total)
    centre = (canvas_size - 1) / 2
    top = int(np.clip(round(centre - cy), 0, canvas_size - h))
    left = int(np.clip(round(centre - cx), 0, canvas_size - w))
    canvas = np.zeros((canvas_size, canvas_size), dtype=np.float32)
    canvas[top : top + h, left : left + w] = box
    return canvas


def render_canvas(image: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Image array → the float32 canvas_size² ink image in [0, 1] the model sees (before normalising)."""
    gray = downscale(to_gray(image), cfg.max_side)
    crop = normalise_stroke(find_ink(gray, cfg), cfg)
    box = fit(crop, cfg.box_size)
    if box.sum() <= 0:
        raise NoInkError("no ink found: the marks vanish at the model's resolution")
    canvas = place_by_centre_of_mass(box, cfg.canvas_size)
    if cfg.blur_sigma > 0:
        canvas = cv2.GaussianBlur(canvas, (0, 0), cfg.blur_sigma)
    return np.clip(canvas, 0.0, 1.0)


def normalise(canvas: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """[0, 1] canvas (H×W or N×H×W) → float32 model input with a channel axis."""
    x = (canvas.astype(np.float32) - cfg.mean) / cfg.std
    return x[None] if x.ndim == 2 else x[:, None]


def preprocess(image: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Image array → float32 1×canvas×canvas model input. Raises NoInkError for blank images."""
    return normalise(render_canvas(image, cfg), cfg)
