"""The grapheme task (Bengali.AI): three heads, trained on synthetic renders and real CMATERdb roots.

- train: every grapheme of graphemes.tsv rendered with the training fonts (`variants` seeded
  renders per grapheme and font) + CMATERdb basic train. CMATERdb samples know only their root:
  their vowel and consonant targets are IGNORE, not "none" (claiming "none" taught a baseline
  that handwriting never carries signs — BENGALI_RENDERING.md).
- validation: the same graphemes rendered with the held-out fonts.
- tests: CMATERdb basic test, root only (measured at export, never used for choosing).

Renders are cached in runs/cache/ (or $HWR_CACHE_DIR), keyed by everything that decides their pixels.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import PIL
from PIL import features

from contract.graphemes import CONSONANT_HEAD, HEADS, ROOT_HEAD, VOWEL_HEAD
from training.config import REPO_ROOT
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
from training.data.bengali_render import (
    DEFAULT_DISTORTION,
    FONT_ROOT,
    FONTS,
    TRAIN_FONTS,
    VALIDATION_FONTS,
    Distortion,
    covers,
    find_fonts,
    render,
    require_raqm,
    shapes_cleanly,
)
from training.data.tasks import Split, TaskData, register_task
from training.losses import IGNORE

COMPOSITION = "bengali_grapheme"  # tells the service to compose whole graphemes (contract/graphemes.py)
DEFAULT_VARIANTS = 4  # 1,295 graphemes × 9 fonts × 4 ≈ 47k renders: about a minute on 2 cores
VAL_VARIANTS = 1
NO_SIGN = "0"  # the class map's label for "no vowel sign" / "no consonant sign"
RENDER_SIZE = 48
PARALLEL_FROM = 5000  # fewer renders than this: one process (starting workers costs seconds)
CACHE_VERSION = 3  # bump whenever the renderer's pixels change for the same parameters
FONT_LICENSE = "fonts: GPL-2+ (fonts-beng-extra), OFL-1.1 (Lohit, Noto)"


@dataclasses.dataclass(frozen=True)
class RenderSpec:
    """Everything that decides the renders' pixels (and so the cache key)."""

    texts: tuple[str, ...]
    fonts: tuple[str, ...]
    variants: int
    seed: int
    size: int = RENDER_SIZE
    distortion: Distortion = DEFAULT_DISTORTION


def default_cache_dir() -> Path:
    return Path(os.environ.get("HWR_CACHE_DIR", REPO_ROOT / "runs" / "cache"))


def sample_rng(seed: int, font: str, text: str, variant: int) -> np.random.Generator:
    """One generator per render, independent of list order: a grapheme renders the same in any set."""
    return np.random.default_rng([seed, FONTS.index(font), zlib.crc32(text.encode("utf-8")), variant])


def render_plan(spec: RenderSpec, font_paths: dict[str, Path]) -> list[tuple[str, tuple[int, ...]]]:
    """Per font, the indices of the texts it renders correctly: every glyph present (else boxes) and
    shaped without a dotted circle (else a sign without a valid base)."""

    def correct(path: Path, text: str) -> bool:
        return covers(path, text) and shapes_cleanly(path, text)

    return [
        (font, tuple(i for i, t in enumerate(spec.texts) if correct(font_paths[font], t)))
        for font in spec.fonts
    ]


def missing_glyphs(texts: tuple[str, ...], fonts: tuple[str, ...], font_paths: dict[str, Path]) -> str:
    """E.g. "ৎ (LikhanNormal.ttf, JamrulNormal.ttf)": the texts left out for the fonts lacking a glyph."""
    lacking = {t: [f for f in fonts if not covers(font_paths[f], t)] for t in texts}
    return "; ".join(f"{t} ({', '.join(fonts)})" for t, fonts in lacking.items() if fonts) or "none"


def _render_font(spec: RenderSpec, font: str, path: Path, texts: tuple[int, ...]) -> np.ndarray:
    cv2.setNumThreads(1)  # parallelism comes from the process pool
    images = [
        render(spec.texts[i], path, sample_rng(spec.seed, font, spec.texts[i], v), spec.size, spec.distortion)
        for i in texts
        for v in range(spec.variants)
    ]
    return np.stack(images) if images else np.zeros((0, spec.size, spec.size), np.uint8)


def render_all(spec: RenderSpec, font_paths: dict[str, Path], workers: int) -> np.ndarray:
    """The planned renders, ordered font, text, variant."""
    require_raqm()  # before any worker starts
    jobs = [(spec, font, font_paths[font], texts) for font, texts in render_plan(spec, font_paths)]
    if workers <= 1 or len(spec.fonts) * len(spec.texts) * spec.variants < PARALLEL_FROM:
        return np.concatenate([_render_font(*job) for job in jobs])
    # spawn, not fork: the parent may hold torch's thread pools.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
        return np.concatenate(list(pool.map(_render_font, *zip(*jobs, strict=True))))


def cache_key(spec: RenderSpec, font_paths: dict[str, Path]) -> str:
    """Hash of the spec, the font files and the libraries that shape, rasterise and warp."""
    fonts = {f: hashlib.sha256(font_paths[f].read_bytes()).hexdigest() for f in spec.fonts}
    libraries = [PIL.__version__, cv2.__version__, np.__version__]
    libraries += [str(features.version(f)) for f in ("raqm", "harfbuzz", "fribidi", "freetype2")]
    record = {
        "version": CACHE_VERSION,
        **dataclasses.asdict(spec),
        "font_sha256": fonts,
        "libraries": libraries,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:20]


def cached_renders(
    spec: RenderSpec, font_paths: dict[str, Path], cache_dir: Path | None, workers: int
) -> np.ndarray:
    if cache_dir is None:
        return render_all(spec, font_paths, workers)
    path = cache_dir / f"graphemes-{cache_key(spec, font_paths)}.npy"
    if path.exists():
        require_raqm()  # a cache is no excuse for an installation that cannot render
        return np.load(path)
    images = render_all(spec, font_paths, workers)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npy")
    np.save(partial, images)
    partial.replace(path)  # atomic: a killed build never leaves a truncated cache
    return images


def synthetic_split(
    graphemes: tuple[Grapheme, ...],
    fonts: tuple[str, ...],
    variants: int,
    *,
    seed: int,
    font_paths: dict[str, Path],
    cache_dir: Path | None,
    workers: int,
) -> Split:
    spec = RenderSpec(tuple(g.text for g in graphemes), fonts, variants, seed)
    images = cached_renders(spec, font_paths, cache_dir, workers)
    # The renders follow the plan: font, grapheme, variant.
    ids = np.array([(g.root, g.vowel, g.consonant) for g in graphemes], dtype=np.int64).reshape(-1, 3)
    rows = [i for _, texts in render_plan(spec, font_paths) for i in texts for _ in range(variants)]
    targets = ids[np.asarray(rows, dtype=np.int64)]
    return Split(images, {head: targets[:, i] for i, head in enumerate(HEADS)})


def pad_to(images: np.ndarray, size: int) -> np.ndarray:
    """Centre smaller images on a `size` square of their own paper (median) grey; no resampling."""
    n, h, w = images.shape
    top, left = (size - h) // 2, (size - w) // 2
    paper = np.median(images.reshape(n, -1), axis=1).astype(np.uint8)
    out = np.broadcast_to(paper[:, None, None], (n, size, size)).copy()
    out[:, top : top + h, left : left + w] = images
    return out


def root_only_split(images: np.ndarray, roots: np.ndarray) -> Split:
    unknown = np.full(len(roots), IGNORE, dtype=np.int64)
    targets = {ROOT_HEAD: roots.astype(np.int64), VOWEL_HEAD: unknown, CONSONANT_HEAD: unknown.copy()}
    return Split(images, targets)


def concat(a: Split, b: Split) -> Split:
    return Split(
        np.concatenate([a.images, b.images]),
        {h: np.concatenate([a.targets[h], b.targets[h]]).astype(np.int64) for h in a.targets},
    )


def shuffled(split: Split, seed: int) -> Split:
    """Seeded order, so any prefix (limit_train, train-eval subset) mixes fonts and sources."""
    order = np.random.default_rng(seed).permutation(len(split))
    return Split(split.images[order], {h: t[order] for h, t in split.targets.items()})


def basic_character_split(images: np.ndarray, roots: np.ndarray, class_map: ClassMap) -> Split:
    """Basic characters as graphemes: their root, no vowel sign, no consonant sign (true, for scoring)."""
    none_vowel = np.full(len(roots), class_map.vowels.index(NO_SIGN), dtype=np.int64)
    none_consonant = np.full(len(roots), class_map.consonants.index(NO_SIGN), dtype=np.int64)
    return Split(
        images, {ROOT_HEAD: roots.astype(np.int64), VOWEL_HEAD: none_vowel, CONSONANT_HEAD: none_consonant}
    )


def grapheme_test_splits(data_dir: Path, class_map: ClassMap | None = None) -> dict[str, Split]:
    """Held-out real handwriting: CMATERdb basic test, scored as graphemes without signs.

    Unlike training (where "no sign" would teach a shortcut, see `root_only_split`), a basic
    character truly has no vowel or consonant sign, so the sign heads are scored on "none" here.
    """
    class_map = class_map or load_class_map(data_dir / BENGALI_DIR / CLASS_MAP)
    test = load_cmaterdb_basic(data_dir, "test", class_map)
    return {"cmaterdb_test": basic_character_split(test.images, test.roots, class_map)}


def build_grapheme_task(
    data_dir: Path,
    seed: int = 0,
    variants: int = DEFAULT_VARIANTS,
    val_variants: int = VAL_VARIANTS,
    font_root: Path = FONT_ROOT,
    cache_dir: Path | None = None,
    workers: int | None = None,
    use_cache: bool = True,
    real_repeats: int = 1,
    combination_variants: int = 0,
) -> TaskData:
    """The task's data; `variants` renders per grapheme and training font (`val_variants` per held-out
    font); `combination_variants` renders per training font of each unlisted sign combination
    (bengali.sign_combinations; 0: none); the real CMATERdb training samples `real_repeats` times
    (more weight for real handwriting, each copy augmented differently). Renders are cached in
    `cache_dir` (default: default_cache_dir()) unless `use_cache` is off; `workers` rendering
    processes (default: one per CPU)."""
    cache_dir = (cache_dir or default_cache_dir()) if use_cache else None
    bengali = data_dir / BENGALI_DIR
    class_map = load_class_map(bengali / CLASS_MAP)
    listed = load_graphemes(bengali / GRAPHEMES, class_map)
    font_paths = find_fonts(root=font_root)
    workers = workers if workers is not None else os.cpu_count() or 1

    def rendered_with(graphemes: tuple[Grapheme, ...], fonts: tuple[str, ...], n: int) -> Split:
        return synthetic_split(
            graphemes, fonts, n, seed=seed, font_paths=font_paths, cache_dir=cache_dir, workers=workers
        )

    synthetic = rendered_with(listed.graphemes, TRAIN_FONTS, variants)
    combinations = sign_combinations(class_map, listed.graphemes) if combination_variants else ()
    if combinations:
        synthetic = concat(synthetic, rendered_with(combinations, TRAIN_FONTS, combination_variants))
    val = rendered_with(listed.graphemes, VALIDATION_FONTS, val_variants)
    cmater = load_cmaterdb_basic(data_dir, "train", class_map)
    padded = pad_to(cmater.images, RENDER_SIZE)
    real = root_only_split(np.tile(padded, (real_repeats, 1, 1)), np.tile(cmater.roots, real_repeats))
    train = shuffled(concat(synthetic, real), seed)
    tests = grapheme_test_splits(data_dir, class_map)

    rendered = (
        f"{len(listed.graphemes)} graphemes of {bengali / GRAPHEMES} (labels: {bengali / CLASS_MAP}), "
        f"Pillow raqm, seed {seed}, {RENDER_SIZE}px"
    )
    fixes = f"two-sign consonant class for {len(listed.relabelled)} rows whose tsv names one sign" + "".join(
        f"; {text}: {why}" for text, why in listed.exceptions.items()
    )
    texts = tuple(g.text for g in listed.graphemes)
    skipped = f"not rendered, font lacks a glyph: {missing_glyphs(texts, FONTS, font_paths)}"
    dropped = f"classes without a root dropped: {', '.join(cmater.unmapped) or 'none'}"
    provenance = [
        {
            "name": "Synthetic Bengali graphemes (training fonts)",
            "path": str(bengali / GRAPHEMES),
            "split": "train",
            "samples": len(synthetic),
            "license": f"{GRAPHEMES_LICENSE}; {FONT_LICENSE}",
            "notes": f"{rendered}; {variants} variants × fonts {', '.join(TRAIN_FONTS)}; {skipped}; {fixes}; "
            f"+ {len(combinations)} unlisted sign combinations × {combination_variants} variants",
        },
        {
            "name": "CMATERdb 3.1.2 basic characters",
            "path": str(bengali / CMATERDB_BASIC.format(split="train")),
            "split": "train",
            "samples": len(real),
            "license": CMATERDB_LICENSE,
            "notes": f"root only: vowel and consonant targets IGNORE; {dropped}; padded to {RENDER_SIZE}px; "
            f"each sample {real_repeats}× per epoch",
        },
        {
            "name": "Synthetic Bengali graphemes (held-out fonts)",
            "path": str(bengali / GRAPHEMES),
            "split": "validation",
            "samples": len(val),
            "license": f"{GRAPHEMES_LICENSE}; {FONT_LICENSE}",
            "notes": f"{rendered}; {val_variants} variants × fonts {', '.join(VALIDATION_FONTS)}; "
            f"{skipped}; split by font (val_fraction unused)",
        },
        {
            "name": "CMATERdb 3.1.2 basic characters",
            "path": str(bengali / CMATERDB_BASIC.format(split="test")),
            "split": "test (cmaterdb_test)",
            "samples": len(tests["cmaterdb_test"]),
            "license": CMATERDB_LICENSE,
            "notes": f"held out, measured only at export; scored as root + no signs; {dropped}",
        },
    ]
    return TaskData(
        heads=class_map.heads(),
        train=train,
        val=val,
        provenance=provenance,
        tests=tests,
        composition=COMPOSITION,
    )


@register_task("grapheme")
def graphemes(
    data_dir: Path,
    val_fraction: float,
    seed: int,
    variants: int = DEFAULT_VARIANTS,
    real_repeats: int = 1,
    combination_variants: int = 0,
    handwriting: dict | None = None,
    evaluation_only: bool = False,
) -> TaskData:
    """Bengali graphemes: root (168), vowel sign (11), consonant sign (7); fonts split train/validation.

    With `handwriting` (HandwritingSpec fields): real roots, compositions and pen renders instead
    (training.data.handwritten_graphemes)."""
    if handwriting is not None:
        from training.data.handwriting_task import HandwritingSpec, build_handwriting_task

        spec = HandwritingSpec(**handwriting)
        return build_handwriting_task(data_dir, seed, spec, evaluation_only=evaluation_only)
    return build_grapheme_task(
        data_dir,
        seed,
        variants=variants,
        real_repeats=real_repeats,
        combination_variants=combination_variants,
    )
