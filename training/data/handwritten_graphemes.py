"""Handwriting-like graphemes with signs, and the real handwriting they are measured on.

Sources, each seeded (one generator per sample, so a sample is the same in any set):
- BanglaLekha-Isolated, split by writer (`HELDOUT_WRITER_FRACTION` of the writers held out, fixed by
  `WRITER_SPLIT_SEED`): real roots, labelled root + no signs (true: isolated characters carry none).
- compositions (training.data.sign_composition): a real root of a training writer with the signs of
  a grapheme as a training font places them, written with the training pen;
- pen renders (training.data.pen): whole graphemes of the training fonts, their strokes redrawn with
  the training pen; the only source for the roots no real data has (most conjuncts).

The held-out validation of graphemes with signs is made the same two ways from what training never
uses: the validation fonts, the held-out pen and looseness, the held-out writers' roots, another seed.
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

from app.graphemes import HEADS, starts_with_consonant
from app.preprocessing import NoInkError, PreprocessConfig, crop_to_ink, ink_strength, remove_specks, to_gray
from training.data.bengali import (
    BENGALI_DIR,
    CLASS_MAP,
    CMATERDB_BASIC,
    CMATERDB_LICENSE,
    GRAPHEMES,
    GRAPHEMES_LICENSE,
    ClassMap,
    Grapheme,
    load_class_map,
    load_cmaterdb_basic,
    load_graphemes,
    sign_combinations,
)
from training.data.bengali_render import FONT_ROOT, TRAIN_FONTS, VALIDATION_FONTS, find_fonts
from training.data.graphemes import (
    COMPOSITION,
    FONT_LICENSE,
    VAL_VARIANTS,
    RenderSpec,
    basic_character_split,
    concat,
    grapheme_test_splits,
    pad_to,
    render_plan,
    shuffled,
    synthetic_split,
)
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
from training.data.tasks import Split, TaskData

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
    out = []
    for i in range(count):
        rng = sample_rng(recipe.seed, f"pen:{font}", grapheme.text, i)
        try:
            out.append((on_paper(redraw(ink, rng, recipe.pen), rng), grapheme))
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
    correctly, see graphemes.render_plan)."""
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


def _split(samples: Sequence[tuple[np.ndarray, Grapheme]], size: int) -> Split:
    images = (
        np.stack([on_square(image, size) for image, _ in samples])
        if samples
        else np.zeros((0, size, size), np.uint8)
    )
    ids = np.array([(g.root, g.vowel, g.consonant) for _, g in samples], np.int64).reshape(-1, 3)
    return Split(images, {head: ids[:, i] for i, head in enumerate(HEADS)})


def _real_split(roots: RealRoots, size: int, class_map: ClassMap) -> Split:
    """Real isolated characters on `size` paper, labelled root + no vowel sign + no consonant sign."""
    padded = pad_to(255 - roots.images, size) if roots.images.shape[1] < size else 255 - roots.images
    return basic_character_split(padded, roots.roots, class_map)


@dataclass(frozen=True)
class HandwritingSpec:
    """How much of each source (task_kwargs of the grapheme task with `handwriting: true`)."""

    compose_per_grapheme: int = 60  # compositions of each composable grapheme (listed + combinations)
    pen_per_font: int = 1  # pen renders of each grapheme in each training font
    font_variants: int = 1  # classic distorted renders of each listed grapheme per training font
    heldout_compose_per_grapheme: int = 3  # the held-out-style validation (listed graphemes only)
    heldout_pen_per_font: int = 1
    banglalekha_val_limit: int = 0  # 0: every held-out writer's sample
    # Share of the training writers' samples used as plain roots (seeded); every one of them can
    # still be the root of a composition.
    banglalekha_plain_fraction: float = 1.0
    raw_size: int = 96  # synthetic samples are stored on sheets of this size
    # CMATERdb's licence allows non-commercial use only: false trains without it (docs/models_and_data.md).
    cmaterdb: bool = True


def build_handwriting_task(
    data_dir: Path,
    seed: int,
    spec: HandwritingSpec,
    font_root: Path = FONT_ROOT,
    cache_dir: Path | None = None,
    workers: int | None = None,
    evaluation_only: bool = False,
) -> TaskData:
    """Train: BanglaLekha training writers + CMATERdb train (real roots, no signs), compositions and pen
    renders with the training fonts and pen, classic renders. Validation (chooses the epoch): graphemes
    with signs made the held-out way. Tests: BanglaLekha held-out writers, CMATERdb test, held-out fonts
    rendered classically. `evaluation_only` builds no training data (export and evaluation)."""
    bengali = data_dir / BENGALI_DIR
    class_map = load_class_map(bengali / CLASS_MAP)
    listed = load_graphemes(bengali / GRAPHEMES, class_map)
    font_paths = find_fonts(root=font_root)
    workers = workers or os.cpu_count() or 1
    train_writers, heldout_writers = split_by_writer(load_banglalekha(data_dir))
    size = spec.raw_size

    def plan(graphemes: Sequence[Grapheme], fonts: tuple[str, ...]) -> list[tuple[str, list[Grapheme]]]:
        texts = RenderSpec(tuple(g.text for g in graphemes), fonts, 1, seed)
        return [(font, [graphemes[i] for i in kept]) for font, kept in render_plan(texts, font_paths)]

    heldout = Recipe(VALIDATION_FONTS, HELDOUT_PEN, HELDOUT_LOOSENESS, HELDOUT_RECIPE.seed + seed)
    val_samples = compositions(
        listed.graphemes,
        class_map,
        heldout_writers,
        font_paths,
        spec.heldout_compose_per_grapheme,
        heldout,
        workers,
    ) + pen_renders(
        plan(listed.graphemes, VALIDATION_FONTS), font_paths, spec.heldout_pen_per_font, heldout, workers
    )
    val = _split(val_samples, size)

    bl_val = _real_split(heldout_writers, size, class_map)
    if spec.banglalekha_val_limit:
        bl_val = shuffled(bl_val, WRITER_SPLIT_SEED)
        bl_val = Split(
            bl_val.images[: spec.banglalekha_val_limit],
            {h: t[: spec.banglalekha_val_limit] for h, t in bl_val.targets.items()},
        )
    fonts_val = synthetic_split(
        listed.graphemes,
        VALIDATION_FONTS,
        VAL_VARIANTS,
        seed=seed,
        font_paths=font_paths,
        cache_dir=cache_dir,
        workers=workers,
    )
    tests = {
        "banglalekha_heldout_writers": bl_val,
        **grapheme_test_splits(data_dir, class_map),
        "heldout_fonts": fonts_val,
    }

    train = Split(np.zeros((0, size, size), np.uint8), {h: np.zeros(0, np.int64) for h in HEADS})
    counts: dict[str, int] = {}
    if not evaluation_only:
        combos = sign_combinations(class_map, listed.graphemes)
        everything = listed.graphemes + combos
        recipe = Recipe(TRAIN_FONTS, TRAIN_PEN, TRAIN_LOOSENESS, TRAIN_RECIPE.seed + seed)
        parts = {
            "banglalekha": _real_split(
                subsample_roots(train_writers, spec.banglalekha_plain_fraction, seed), size, class_map
            ),
            "cmaterdb": pad_split(basic_character_split(*_cmater(data_dir, class_map)), size)
            if spec.cmaterdb
            else _split([], size),
            "compositions": _split(
                compositions(
                    everything,
                    class_map,
                    train_writers,
                    font_paths,
                    spec.compose_per_grapheme,
                    recipe,
                    workers,
                ),
                size,
            ),
            "pen": _split(
                pen_renders(plan(everything, TRAIN_FONTS), font_paths, spec.pen_per_font, recipe, workers),
                size,
            ),
            "fonts": pad_split(
                synthetic_split(
                    listed.graphemes,
                    TRAIN_FONTS,
                    spec.font_variants,
                    seed=seed,
                    font_paths=font_paths,
                    cache_dir=cache_dir,
                    workers=workers,
                ),
                size,
            ),
        }
        counts = {name: len(part) for name, part in parts.items()}
        train = parts["banglalekha"]
        for part in list(parts.values())[1:]:
            train = concat(train, part)
        train = shuffled(train, seed)

    provenance = handwriting_provenance(
        bengali,
        spec,
        counts,
        len(val),
        {k: len(v) for k, v in tests.items()},
        len(heldout_writers.images),
        len(np.unique(heldout_writers.writers)),
    )
    return TaskData(
        heads=class_map.heads(),
        train=train,
        val=val,
        provenance=provenance,
        tests=tests,
        composition=COMPOSITION,
    )


def pad_split(split: Split, size: int) -> Split:
    return Split(pad_to(split.images, size), split.targets)


def _cmater(data_dir: Path, class_map: ClassMap) -> tuple[np.ndarray, np.ndarray, ClassMap]:
    samples = load_cmaterdb_basic(data_dir, "train", class_map)
    return samples.images, samples.roots, class_map


def handwriting_provenance(
    bengali: Path,
    spec: HandwritingSpec,
    train_counts: dict[str, int],
    val_samples: int,
    test_samples: dict[str, int],
    heldout_samples: int,
    heldout_writers: int,
) -> list[dict]:
    synthetic_license = f"{GRAPHEMES_LICENSE}; {FONT_LICENSE}"
    held = (
        f"{HELDOUT_WRITER_FRACTION:.0%} of the writers ({heldout_writers}) held out, chosen by seed "
        f"{WRITER_SPLIT_SEED}"
    )
    sources = [
        (
            "BanglaLekha-Isolated (training writers)",
            bengali / BANGLALEKHA,
            "train",
            "banglalekha",
            BANGLALEKHA_LICENSE,
            f"real roots labelled root + no signs; {held}",
        ),
        (
            "CMATERdb 3.1.2 basic characters",
            bengali / CMATERDB_BASIC.format(split="train"),
            "train",
            "cmaterdb",
            CMATERDB_LICENSE,
            "real roots labelled root + no signs",
        ),
        (
            "Compositions: real roots + font-placed signs",
            bengali / GRAPHEMES,
            "train",
            "compositions",
            f"{BANGLALEKHA_LICENSE}; {synthetic_license}",
            f"{spec.compose_per_grapheme} per composable grapheme (listed + one-sign combinations), training "
            f"writers' roots, signs of fonts {', '.join(TRAIN_FONTS)} redrawn with the training pen",
        ),
        (
            "Pen renders of font graphemes",
            bengali / GRAPHEMES,
            "train",
            "pen",
            synthetic_license,
            f"{spec.pen_per_font} per grapheme and training font, skeleton redrawn with the training pen",
        ),
        (
            "Classic font renders",
            bengali / GRAPHEMES,
            "train",
            "fonts",
            synthetic_license,
            f"{spec.font_variants} distorted renders per listed grapheme and training font",
        ),
    ]
    provenance = [
        {
            "name": name,
            "path": str(path),
            "split": split,
            "samples": train_counts.get(key, 0),
            "license": license_,
            "notes": notes,
        }
        for name, path, split, key, license_, notes in sources
    ]
    provenance += [
        {
            "name": "Held-out-style graphemes with signs",
            "path": str(bengali / GRAPHEMES),
            "split": "validation",
            "samples": val_samples,
            "license": f"{BANGLALEKHA_LICENSE}; {synthetic_license}",
            "notes": "listed graphemes only; compositions on held-out writers' roots "
            f"({spec.heldout_compose_per_grapheme} "
            f"per grapheme) + pen renders ({spec.heldout_pen_per_font} per font), fonts "
            f"{', '.join(VALIDATION_FONTS)}, the held-out pen and looseness, another seed",
        },
        {
            "name": "BanglaLekha-Isolated (held-out writers)",
            "path": str(bengali / BANGLALEKHA),
            # A seeded 6,000 of them also choose the epoch, with the held-out style (training.packing).
            "split": "validation and test (banglalekha_heldout_writers)",
            "samples": test_samples.get("banglalekha_heldout_writers", 0),
            "license": BANGLALEKHA_LICENSE,
            "notes": f"{held}; {heldout_samples} samples of theirs; root + no signs; a seeded 6,000 of "
            "them choose the epoch together with the held-out-style graphemes",
        },
        {
            "name": "CMATERdb 3.1.2 basic characters",
            "path": str(bengali / CMATERDB_BASIC.format(split="test")),
            "split": "test (cmaterdb_test)",
            "samples": test_samples.get("cmaterdb_test", 0),
            "license": CMATERDB_LICENSE,
            "notes": "held out; scored as root + no signs",
        },
        {
            "name": "Classic renders in held-out fonts",
            "path": str(bengali / GRAPHEMES),
            "split": "test (heldout_fonts)",
            "samples": test_samples.get("heldout_fonts", 0),
            "license": synthetic_license,
            "notes": f"fonts {', '.join(VALIDATION_FONTS)} (the former validation)",
        },
    ]
    return provenance
