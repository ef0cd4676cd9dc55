"""The sources of handwriting-like graphemes: real roots by writer, compositions, pen renders.

Sources, each seeded (one generator per sample, so a sample is the same in any set):
- BanglaLekha-Isolated, split by writer (`HELDOUT_WRITER_FRACTION` of the writers held out, fixed by
  `WRITER_SPLIT_SEED`): real roots, labelled root + no signs (true: isolated characters carry none).
- compositions (training.data.sign_composition): a real root of a training writer with the signs of
  a grapheme as a training font places them, written with the training pen;
- pen renders (training.data.pen): whole graphemes of the training fonts, their strokes redrawn with
  the training pen; the only source for the roots no real data has (most conjuncts).

The held-out validation of graphemes with signs is made the same two ways from what training never
uses: the validation fonts, the held-out pen and looseness, the held-out writers' roots, another seed.
The grapheme task's data built from these sources is training.data.handwriting_task.
"""

from __future__ import annotations

import multiprocessing
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from contract.graphemes import starts_with_consonant
from contract.preprocessing import (
    NoInkError,
    PreprocessConfig,
    crop_to_ink,
    ink_strength,
    remove_specks,
    to_gray,
)
from training.data.bengali import BENGALI_DIR, ClassMap, Grapheme
from training.data.pen import HELDOUT_PEN, TRAIN_PEN, PenStyle, redraw
from training.data.sign_composition import (
    HELDOUT_LOOSENESS,
    TRAIN_LOOSENESS,
    Looseness,
    SignSprite,
    compose,
    extract_signs,
    ink_of,
    on_paper,
)

BANGLALEKHA = "banglalekha_isolated.npz"
BANGLALEKHA_LICENSE = "CC BY 4.0 (Biswas et al. 2017, Data in Brief)"
HELDOUT_WRITER_FRACTION = 0.1
WRITER_SPLIT_SEED = 2017  # fixed: the held-out writers never change with the training seed
# Ink is found on real roots at their own resolution, as the service would on a 64 px upload.
ROOT_INK = PreprocessConfig(work_side=0)


@dataclass(frozen=True)
class RealRoots:
    images: np.ndarray  # N×64×64 uint8, ink-high
    roots: np.ndarray  # N class-map root ids
    writers: np.ndarray  # N writer indices


def load_banglalekha(data_dir: Path) -> RealRoots:
    with np.load(data_dir / BENGALI_DIR / BANGLALEKHA, allow_pickle=False) as data:
        return RealRoots(
            data["images"], data["labels"][:, 0].astype(np.int64), data["writer"].astype(np.int64)
        )


def split_by_writer(
    samples: RealRoots, fraction: float = HELDOUT_WRITER_FRACTION, seed: int = WRITER_SPLIT_SEED
) -> tuple[RealRoots, RealRoots]:
    """(training writers, held-out writers): a seeded `fraction` of the writers, all their samples."""
    writers = np.unique(samples.writers)
    held = np.random.default_rng(seed).permutation(writers)[: round(fraction * len(writers))]
    out = np.isin(samples.writers, held)

    def take(mask: np.ndarray) -> RealRoots:
        return RealRoots(samples.images[mask], samples.roots[mask], samples.writers[mask])

    return take(~out), take(out)


def subsample_roots(samples: RealRoots, fraction: float, seed: int) -> RealRoots:
    if fraction >= 1.0:
        return samples
    keep = np.random.default_rng(seed).random(len(samples.roots)) < fraction
    return RealRoots(samples.images[keep], samples.roots[keep], samples.writers[keep])


def root_ink(image: np.ndarray) -> np.ndarray:
    """A real root's ink strength in [0, 1], cropped to the ink (the service's ink search)."""
    return crop_to_ink(remove_specks(ink_strength(to_gray(image), ROOT_INK), ROOT_INK))


@dataclass(frozen=True)
class Recipe:
    """How one set of synthetic graphemes is made."""

    fonts: tuple[str, ...]
    pen: PenStyle
    looseness: Looseness
    seed: int
    # Pen renders cycle through these styles (render i uses pens[i % len]); empty: `pen` alone.
    pens: tuple[PenStyle, ...] = ()


TRAIN_RECIPE = Recipe(fonts=(), pen=TRAIN_PEN, looseness=TRAIN_LOOSENESS, seed=0)
HELDOUT_RECIPE = Recipe(fonts=(), pen=HELDOUT_PEN, looseness=HELDOUT_LOOSENESS, seed=10_007)


def sample_rng(seed: int, kind: str, text: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(kind.encode()), zlib.crc32(text.encode("utf-8")), index])


# Worker state, set before forking (read-only in the workers): the real roots by class.
_ROOTS_BY_CLASS: dict[int, np.ndarray] = {}


def _compose_grapheme(
    job: tuple[Grapheme, str, tuple[tuple[str, str], ...], int, Recipe],
) -> list[tuple[np.ndarray, Grapheme]]:
    """`count` compositions of one grapheme: a real root each, the signs of a random usable font."""
    grapheme, root_text, fonts, count, recipe = job
    cv2.setNumThreads(1)
    sprites: list[SignSprite] = []
    for _, path in fonts:
        sprite = extract_signs(grapheme.text, root_text, Path(path))
        if sprite is not None:
            sprites.append(sprite)
    pool = _ROOTS_BY_CLASS.get(grapheme.root)
    if not sprites or pool is None or not len(pool):
        return []
    out = []
    for i in range(count):
        rng = sample_rng(recipe.seed, "compose", grapheme.text, i)
        sprite = sprites[int(rng.integers(len(sprites)))]
        try:
            ink = compose(
                root_ink(pool[int(rng.integers(len(pool)))]), sprite, rng, recipe.pen, recipe.looseness
            )
        except (NoInkError, ValueError):
            continue
        out.append((on_paper(ink, rng), grapheme))
    return out


def _pen_render(job: tuple[Grapheme, str, str, int, Recipe]) -> list[tuple[np.ndarray, Grapheme]]:
    grapheme, font, path, count, recipe = job
    cv2.setNumThreads(1)
    ink = ink_of(grapheme.text, Path(path))
    pens = recipe.pens or (recipe.pen,)
    out = []
    for i in range(count):
        rng = sample_rng(recipe.seed, f"pen:{font}", grapheme.text, i)
        try:
            out.append((on_paper(redraw(ink, rng, pens[i % len(pens)]), rng), grapheme))
        except ValueError:
            continue
    return out


def _run(fn: Callable, jobs: Sequence, workers: int) -> list[tuple[np.ndarray, Grapheme]]:
    if workers <= 1 or len(jobs) < 8:
        results = [fn(job) for job in jobs]
    else:
        # fork: the workers read the real roots from the parent's memory without copying them.
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(fn, jobs, chunksize=max(1, len(jobs) // (workers * 16)))
    return [sample for result in results for sample in result]


def composable(graphemes: Sequence[Grapheme], class_map: ClassMap, real_roots: set[int]) -> list[Grapheme]:
    """Graphemes with a sign whose root has real handwriting and takes signs (a consonant)."""
    return [
        g
        for g in graphemes
        if (g.vowel or g.consonant)
        and g.root in real_roots
        and starts_with_consonant(class_map.roots[g.root])
    ]


def compositions(
    graphemes: Sequence[Grapheme],
    class_map: ClassMap,
    roots: RealRoots,
    font_paths: dict[str, Path],
    per_grapheme: int,
    recipe: Recipe,
    workers: int | None = None,
) -> list[tuple[np.ndarray, Grapheme]]:
    """`per_grapheme` compositions of each composable grapheme on `roots`, with the recipe's fonts."""
    _ROOTS_BY_CLASS.clear()
    _ROOTS_BY_CLASS.update({int(r): roots.images[roots.roots == r] for r in np.unique(roots.roots)})
    fonts = tuple((f, str(font_paths[f])) for f in recipe.fonts)
    jobs = [
        (g, class_map.roots[g.root], fonts, per_grapheme, recipe)
        for g in composable(graphemes, class_map, set(_ROOTS_BY_CLASS))
    ]
    try:
        return _run(_compose_grapheme, jobs, workers or os.cpu_count() or 1)
    finally:
        _ROOTS_BY_CLASS.clear()


def pen_renders(
    plan: Sequence[tuple[str, Sequence[Grapheme]]],
    font_paths: dict[str, Path],
    per_font: int,
    recipe: Recipe,
    workers: int | None = None,
) -> list[tuple[np.ndarray, Grapheme]]:
    """`per_font` pen renders of each grapheme in each font of the plan (font → graphemes it renders
    correctly, see graphemes.render_plan), in the recipe's pen styles in turn."""
    jobs = [(g, font, str(font_paths[font]), per_font, recipe) for font, graphemes in plan for g in graphemes]
    return _run(_pen_render, jobs, workers or os.cpu_count() or 1)


def on_square(image: np.ndarray, size: int) -> np.ndarray:
    """A grey scan on a size×size sheet of its own paper (median grey), shrunk to fit if larger:
    synthetic samples come in any shape, a split holds one."""
    h, w = image.shape
    if max(h, w) > size:
        scale = size / max(h, w)
        image = cv2.resize(
            image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
        h, w = image.shape
    out = np.full((size, size), np.median(image), np.uint8)
    top, left = (size - h) // 2, (size - w) // 2
    out[top : top + h, left : left + w] = image
    return out
