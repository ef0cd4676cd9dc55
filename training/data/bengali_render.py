"""Synthetic handwriting-like Bengali graphemes: Pillow + raqm shaping, then seeded distortion.

Only the fonts that shape every test string correctly are used (../shared/BENGALI_RENDERING.md:
MitraMono detaches the reph, FreeSans/FreeSerif show a visible hasanta). Rendering refuses to run
without raqm, because Pillow's BASIC layout breaks conjuncts, places no reph and draws ি after its
consonant, warning only once. Everything random comes from the caller's `numpy.random.Generator`,
so the same seed gives the same pixels.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import uharfbuzz as hb
from PIL import Image, ImageDraw, ImageFont, features

FONT_ROOT = Path("/usr/share/fonts")
INSTALL_HINT = "run scripts/install-system-deps.sh (libfribidi0 fonts-beng fonts-noto-core)"

# Verified by eye: all 8 test strings of BENGALI_RENDERING.md shaped correctly.
FONTS: tuple[str, ...] = (
    "LikhanNormal.ttf",  # the most hand-lettered look: always in training
    "Ani.ttf",
    "JamrulNormal.ttf",
    "Mukti.ttf",
    "Muktibold.ttf",
    "Lohit-Bengali.ttf",
    "Lohit-Assamese.ttf",
    "NotoSansBengali-Regular.ttf",
    "NotoSansBengali-Bold.ttf",
    "NotoSerifBengali-Regular.ttf",
    "NotoSerifBengali-Bold.ttf",
)
# Held out for validation, each with a sibling in training (Mukti, Noto Serif Bold), so validation
# measures generalisation to unseen fonts of the kinds trained on, not to an unseen style.
VALIDATION_FONTS: tuple[str, ...] = ("Muktibold.ttf", "NotoSerifBengali-Regular.ttf")
TRAIN_FONTS: tuple[str, ...] = tuple(f for f in FONTS if f not in VALIDATION_FONTS)


class RaqmUnavailable(RuntimeError):
    """Pillow has no raqm layout: Bengali would render wrongly."""


class MissingFonts(FileNotFoundError):
    """Some of the verified Bengali fonts are not installed."""


class MissingGlyph(ValueError):
    """The font has no glyph for a character of the text: it would draw a box (tofu)."""


def require_raqm() -> None:
    # Asked on every render (a few µs), so a broken installation can never slip through a cache.
    if not features.check("raqm"):
        raise RaqmUnavailable(f"Pillow has no raqm layout, so Bengali would be mis-shaped; {INSTALL_HINT}")


def find_fonts(names: tuple[str, ...] = FONTS, root: Path = FONT_ROOT) -> dict[str, Path]:
    """Font file name → path, searched under `root` (Debian's layout or any other)."""
    found: dict[str, Path] = {}
    if root.is_dir():
        for path in sorted(root.rglob("*.ttf")):
            if path.name in names:
                found.setdefault(path.name, path)
    missing = [n for n in names if n not in found]
    if missing:
        raise MissingFonts(f"Bengali fonts not found under {root}: {', '.join(missing)}; {INSTALL_HINT}")
    return {n: found[n] for n in names}


def fonts_available(root: Path = FONT_ROOT) -> bool:
    try:
        find_fonts(root=root)
    except MissingFonts:
        return False
    return True


@functools.lru_cache(maxsize=64)
def _font(path: str, px: int, layout: ImageFont.Layout) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, px, layout_engine=layout)


def draw_text(text: str, font: Path, px: int, layout: ImageFont.Layout = ImageFont.Layout.RAQM) -> np.ndarray:
    """Undistorted black-on-white text, centred on a 3·px square canvas (room for any grapheme)."""
    if layout == ImageFont.Layout.RAQM:
        require_raqm()
    text = with_placeholder(unicodedata.normalize("NFC", text))  # NFC keeps ZWJ/ZWNJ (they shape)
    side = 3 * px
    image = Image.new("L", (side, side), 255)
    # BASIC layout (only for comparison in tests) takes no language.
    language = "bn" if layout == ImageFont.Layout.RAQM else None
    # anchor "mm": glyphs may start left of the origin (ি), so centre on the ink, not on the pen.
    ImageDraw.Draw(image).text(
        (side / 2, side / 2), text, font=_font(str(font), px, layout), fill=0, anchor="mm", language=language
    )
    return np.asarray(image)


# A sign written alone (the roots ং and ঃ) has no base: HarfBuzz, raqm's shaper, then draws a dotted
# circle ◌ as its base, which no writer draws. A no-break space is the base it accepts instead.
PLACEHOLDER = "\u00a0"
DOTTED_CIRCLE = 0x25CC


def with_placeholder(text: str) -> str:
    return PLACEHOLDER + text if text and unicodedata.category(text[0]).startswith("M") else text


@functools.lru_cache(maxsize=64)
def _hb_font(path: str) -> hb.Font:
    return hb.Font(hb.Face(hb.Blob.from_file_path(path)))


def shapes_cleanly(font: Path, text: str) -> bool:
    """Whether HarfBuzz shapes `text` in `font` with no dotted circle (a sign without a valid base,
    e.g. a vowel sign on an independent vowel) and no missing glyph: a correct rendering."""
    hb_font = _hb_font(str(font))
    buffer = hb.Buffer()
    buffer.add_str(with_placeholder(unicodedata.normalize("NFC", text)))
    buffer.guess_segment_properties()
    hb.shape(hb_font, buffer)
    broken = {0, hb_font.get_nominal_glyph(DOTTED_CIRCLE)}
    return all(info.codepoint not in broken for info in buffer.glyph_infos)


# An unassigned code point: no font maps it, so every font draws its missing-glyph box for it.
NOTDEF_PROBE = "\u0378"
JOINERS = frozenset("\u200c\u200d")  # ZWNJ, ZWJ: no glyph of their own


@functools.lru_cache(maxsize=4096)
def _has_glyph(font: Path, char: str) -> bool:
    return not np.array_equal(draw_text(char, font, 32), draw_text(NOTDEF_PROBE, font, 32))


def covers(font: Path, text: str) -> bool:
    """Whether `font` has a glyph for every character of `text` (Likhan and Jamrul lack ৎ, for one)."""
    return all(_has_glyph(font, char) for char in set(unicodedata.normalize("NFC", text)) - JOINERS)


@dataclass(frozen=True)
class Distortion:
    """Ranges of the handwriting-like variation; every value is drawn uniformly from its range."""

    # Ink pixels added (+) or removed (−) around each stroke at em = 64 px. Biased thin:
    # handwritten strokes are thinner and more even than printed ones.
    stroke: tuple[int, int] = (-2, 1)
    rotate: float = 8.0  # degrees, ±
    shear: float = 0.25  # horizontal shear, ±
    scale_x: tuple[float, float] = (0.9, 1.35)  # handwriting is wider than print
    scale_y: tuple[float, float] = (0.85, 1.1)
    elastic: float = 0.035  # largest local displacement, × em
    elastic_grid: int = 4  # control points per side of the smooth displacement field
    margin: tuple[float, float] = (0.04, 0.18)  # free border, × output size
    paper: tuple[float, float] = (195.0, 255.0)
    ink: tuple[float, float] = (0.0, 90.0)
    blur: float = 0.9  # Gaussian sigma, px of the output
    noise: float = 8.0  # Gaussian sigma, grey levels


DEFAULT_DISTORTION = Distortion()


def _change_stroke(ink: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate (pixels > 0) or erode (< 0) the ink; an erosion that would break the glyph is softened."""
    while pixels != 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(pixels) + 1,) * 2)
        changed = cv2.dilate(ink, kernel) if pixels > 0 else cv2.erode(ink, kernel)
        if pixels > 0 or (changed > 127).sum() >= 0.4 * (ink > 127).sum():
            return changed
        pixels += 1
    return ink


def _affine(ink: np.ndarray, rng: np.random.Generator, d: Distortion) -> np.ndarray:
    h, w = ink.shape
    angle = np.deg2rad(rng.uniform(-d.rotate, d.rotate))
    shear = rng.uniform(-d.shear, d.shear)
    sx, sy = rng.uniform(*d.scale_x), rng.uniform(*d.scale_y)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = rotation @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([sx, sy])
    # Scaling up may push ink off the canvas: shrink the whole map so it stays inside.
    linear /= max(1.0, sx, sy)
    centre = np.array([w / 2, h / 2])
    matrix = np.hstack([linear, (centre - linear @ centre)[:, None]])
    return cv2.warpAffine(ink, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)


def _elastic(ink: np.ndarray, rng: np.random.Generator, amplitude: float, grid: int) -> np.ndarray:
    """Smooth random warp: displacements drawn on a coarse grid, interpolated bicubically."""
    h, w = ink.shape
    coarse = rng.uniform(-1.0, 1.0, size=(2, grid, grid)).astype(np.float32) * amplitude
    dx = cv2.resize(coarse[0], (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(coarse[1], (w, h), interpolation=cv2.INTER_CUBIC)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(ink, xs + dx, ys + dy, interpolation=cv2.INTER_LINEAR, borderValue=0)


def _fit(ink: np.ndarray, size: int, margin: int, rng: np.random.Generator) -> np.ndarray:
    """Crop to the ink and fit it into size − 2·margin, keeping the aspect, placed with a small jitter."""
    ys, xs = np.nonzero(ink > 32)
    crop = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    inner = size - 2 * margin
    scale = inner / max(crop.shape)
    new_w, new_h = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
    resized = cv2.resize(crop, (new_w, new_h), interpolation=cv2.INTER_AREA)
    top = int(rng.integers(0, size - new_h + 1))
    left = int(rng.integers(0, size - new_w + 1))
    out = np.zeros((size, size), np.uint8)
    out[top : top + new_h, left : left + new_w] = resized
    return out


def render(
    text: str,
    font: Path,
    rng: np.random.Generator,
    size: int = 64,
    distortion: Distortion = DEFAULT_DISTORTION,
) -> np.ndarray:
    """A size×size uint8 grey image of `text`: dark ink on light paper, distorted like handwriting."""
    d = distortion
    require_raqm()
    if not covers(font, text):
        raise MissingGlyph(f"{font.name} has no glyph for a character of {text!r}")
    em = 64  # fixed working resolution: stroke changes mean the same for every output size
    ink = 255 - draw_text(text, font, em)  # ink-high while distorting: borders fill with paper (0)
    if ink.max() < 128:
        raise ValueError(f"{text!r} renders without ink in {font.name}")
    ink = _change_stroke(ink, int(rng.integers(d.stroke[0], d.stroke[1] + 1)))
    ink = _affine(ink, rng, d)
    ink = _elastic(ink, rng, rng.uniform(0.0, d.elastic) * em, d.elastic_grid)
    margin = round(rng.uniform(*d.margin) * size)
    strength = _fit(ink, size, margin, rng).astype(np.float32) / 255.0

    paper, ink_level = rng.uniform(*d.paper), rng.uniform(*d.ink)
    clean = paper + (ink_level - paper) * strength
    sigma = rng.uniform(0.0, d.blur)
    blurred = cv2.GaussianBlur(clean, (0, 0), sigma) if sigma > 0.05 else clean
    noisy = blurred + rng.normal(0.0, rng.uniform(0.0, d.noise), size=clean.shape)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
