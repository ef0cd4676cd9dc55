"""The grapheme task's data for handwriting (`handwriting:` in its task_kwargs): train, validation, tests.

- train: BanglaLekha training writers and CMATERdb train (real roots, no signs), compositions and
  pen renders with the training fonts and pen, classic font renders;
- validation (chooses the epoch): graphemes with signs made the held-out way
  (training.data.handwritten_graphemes.HELDOUT_RECIPE on the held-out writers' roots);
- tests: BanglaLekha held-out writers, CMATERdb test, classic renders in the held-out fonts.

Every sample is an image on a `raw_size` sheet; the service's preprocessing runs on it later
(training.data.datasets or a pack, training.packing), as on any upload.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from contract.graphemes import HEADS
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
from training.data.handwritten_graphemes import (
    BANGLALEKHA,
    BANGLALEKHA_LICENSE,
    HELDOUT_RECIPE,
    HELDOUT_WRITER_FRACTION,
    TRAIN_RECIPE,
    WRITER_SPLIT_SEED,
    RealRoots,
    Recipe,
    compositions,
    load_banglalekha,
    on_square,
    pen_renders,
    split_by_writer,
    subsample_roots,
)
from training.data.pen import TRAIN_PENS
from training.data.tasks import Split, TaskData

Samples = Sequence[tuple[np.ndarray, Grapheme]]


@dataclass(frozen=True)
class HandwritingSpec:
    """How much of each source (task_kwargs of the grapheme task with `handwriting: true`)."""

    compose_per_grapheme: int = 60  # compositions of each composable grapheme (listed + combinations)
    pen_per_font: int = 1  # pen renders of each grapheme in each training font
    # Pen renders of each grapheme whose root no real handwriting has (fonts are its only source),
    # per training font; None: pen_per_font. They cycle through the named training pen styles
    # (training.data.pen.TRAIN_PENS), so the first is always the plain training pen's when "train"
    # comes first.
    font_only_pen_per_font: int | None = None
    font_only_pens: tuple[str, ...] = ("train",)
    font_variants: int = 1  # classic distorted renders of each listed grapheme per training font
    heldout_compose_per_grapheme: int = 3  # the held-out-style validation (listed graphemes only)
    heldout_pen_per_font: int = 1
    # Share of the training writers' samples used as plain roots (seeded); every one of them can
    # still be the root of a composition.
    banglalekha_plain_fraction: float = 1.0
    raw_size: int = 96  # synthetic samples are stored on sheets of this size
    # CMATERdb's licence allows non-commercial use only: false trains without it
    # (docs/models_and_data.md).
    cmaterdb: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "font_only_pens", tuple(self.font_only_pens))  # YAML gives a list
        unknown = [name for name in self.font_only_pens if name not in TRAIN_PENS]
        if unknown or not self.font_only_pens:
            raise ValueError(f"font_only_pens {list(self.font_only_pens)}: choose from {sorted(TRAIN_PENS)}")

    @property
    def font_only_per_font(self) -> int:
        return self.pen_per_font if self.font_only_pen_per_font is None else self.font_only_pen_per_font


@dataclass(frozen=True)
class _Context:
    """What every part of the build needs: the label space, the fonts, the writers' split."""

    data_dir: Path
    seed: int
    spec: HandwritingSpec
    class_map: ClassMap
    listed: tuple[Grapheme, ...]
    font_paths: dict[str, Path]
    train_writers: RealRoots
    heldout_writers: RealRoots
    cache_dir: Path | None
    workers: int

    @property
    def bengali(self) -> Path:
        return self.data_dir / BENGALI_DIR

    def plan(self, graphemes: Sequence[Grapheme], fonts: tuple[str, ...]) -> list[tuple[str, list[Grapheme]]]:
        """Per font, the graphemes it renders correctly (graphemes.render_plan)."""
        texts = RenderSpec(tuple(g.text for g in graphemes), fonts, 1, self.seed)
        return [(font, [graphemes[i] for i in kept]) for font, kept in render_plan(texts, self.font_paths)]

    def classic(self, fonts: tuple[str, ...], variants: int) -> Split:
        return synthetic_split(
            self.listed,
            fonts,
            variants,
            seed=self.seed,
            font_paths=self.font_paths,
            cache_dir=self.cache_dir,
            workers=self.workers,
        )


def samples_split(samples: Samples, size: int) -> Split:
    """Synthetic samples (image, grapheme) as a split of `size` sheets with all three targets."""
    images = [on_square(image, size) for image, _ in samples]
    stacked = np.stack(images) if images else np.zeros((0, size, size), np.uint8)
    ids = np.array([(g.root, g.vowel, g.consonant) for _, g in samples], np.int64).reshape(-1, 3)
    return Split(stacked, {head: ids[:, i] for i, head in enumerate(HEADS)})


def real_split(roots: RealRoots, size: int, class_map: ClassMap) -> Split:
    """Real isolated characters (ink-high) as dark ink on `size` paper: root + no vowel + no consonant."""
    padded = pad_to(255 - roots.images, size) if roots.images.shape[1] < size else 255 - roots.images
    return basic_character_split(padded, roots.roots, class_map)


def pad_split(split: Split, size: int) -> Split:
    return Split(pad_to(split.images, size), split.targets)


def validation_split(ctx: _Context) -> Split:
    """The listed graphemes made the held-out way: compositions on the held-out writers' roots and pen
    renders, both with the validation fonts, the held-out pen and looseness and another seed."""
    held = HELDOUT_RECIPE
    recipe = Recipe(VALIDATION_FONTS, held.pen, held.looseness, held.seed + ctx.seed)
    composed = compositions(
        ctx.listed,
        ctx.class_map,
        ctx.heldout_writers,
        ctx.font_paths,
        ctx.spec.heldout_compose_per_grapheme,
        recipe,
        ctx.workers,
    )
    plan = ctx.plan(ctx.listed, VALIDATION_FONTS)
    rendered = pen_renders(plan, ctx.font_paths, ctx.spec.heldout_pen_per_font, recipe, ctx.workers)
    return samples_split(list(composed) + list(rendered), ctx.spec.raw_size)


def test_splits(ctx: _Context) -> dict[str, Split]:
    return {
        "banglalekha_heldout_writers": real_split(ctx.heldout_writers, ctx.spec.raw_size, ctx.class_map),
        **grapheme_test_splits(ctx.data_dir, ctx.class_map),
        "heldout_fonts": ctx.classic(VALIDATION_FONTS, VAL_VARIANTS),
    }


def training_parts(ctx: _Context) -> dict[str, Split]:
    """The training sources by name (the keys of handwriting_provenance's counts)."""
    spec, size = ctx.spec, ctx.spec.raw_size
    everything = ctx.listed + sign_combinations(ctx.class_map, ctx.listed)
    recipe = Recipe(TRAIN_FONTS, TRAIN_RECIPE.pen, TRAIN_RECIPE.looseness, TRAIN_RECIPE.seed + ctx.seed)
    plain = subsample_roots(ctx.train_writers, spec.banglalekha_plain_fraction, ctx.seed)
    cmater = load_cmaterdb_basic(ctx.data_dir, "train", ctx.class_map)
    composed = compositions(
        everything,
        ctx.class_map,
        ctx.train_writers,
        ctx.font_paths,
        spec.compose_per_grapheme,
        recipe,
        ctx.workers,
    )
    # Roots no real data has are learnt from fonts alone: their graphemes get their own count of
    # pen renders, in more pen styles.
    real = set(np.unique(ctx.train_writers.roots).tolist())
    plan = ctx.plan(everything, TRAIN_FONTS)
    with_real = [(font, [g for g in kept if g.root in real]) for font, kept in plan]
    font_only = [(font, [g for g in kept if g.root not in real]) for font, kept in plan]
    font_only_recipe = replace(recipe, pens=tuple(TRAIN_PENS[name] for name in spec.font_only_pens))
    rendered = pen_renders(with_real, ctx.font_paths, spec.pen_per_font, recipe, ctx.workers)
    rendered += pen_renders(font_only, ctx.font_paths, spec.font_only_per_font, font_only_recipe, ctx.workers)
    return {
        "banglalekha": real_split(plain, size, ctx.class_map),
        "cmaterdb": pad_split(basic_character_split(cmater.images, cmater.roots, ctx.class_map), size)
        if spec.cmaterdb
        else samples_split([], size),
        "compositions": samples_split(composed, size),
        "pen": samples_split(rendered, size),
        "fonts": pad_split(ctx.classic(TRAIN_FONTS, spec.font_variants), size),
    }


def build_handwriting_task(
    data_dir: Path,
    seed: int,
    spec: HandwritingSpec,
    font_root: Path = FONT_ROOT,
    cache_dir: Path | None = None,
    workers: int | None = None,
    evaluation_only: bool = False,
) -> TaskData:
    """The task's data (module docstring); `evaluation_only` builds no training data (export and
    evaluation need only the validation and the tests)."""
    class_map = load_class_map(data_dir / BENGALI_DIR / CLASS_MAP)
    train_writers, heldout_writers = split_by_writer(load_banglalekha(data_dir))
    ctx = _Context(
        data_dir=data_dir,
        seed=seed,
        spec=spec,
        class_map=class_map,
        listed=load_graphemes(data_dir / BENGALI_DIR / GRAPHEMES, class_map).graphemes,
        font_paths=find_fonts(root=font_root),
        train_writers=train_writers,
        heldout_writers=heldout_writers,
        cache_dir=cache_dir,
        workers=workers or os.cpu_count() or 1,
    )
    val, tests = validation_split(ctx), test_splits(ctx)
    size = spec.raw_size
    train = Split(np.zeros((0, size, size), np.uint8), {h: np.zeros(0, np.int64) for h in HEADS})
    counts: dict[str, int] = {}
    if not evaluation_only:
        parts = training_parts(ctx)
        counts = {name: len(part) for name, part in parts.items()}
        for part in parts.values():
            train = concat(train, part)
        train = shuffled(train, seed)
    provenance = handwriting_provenance(ctx, counts, len(val), {k: len(v) for k, v in tests.items()})
    return TaskData(
        heads=class_map.heads(),
        train=train,
        val=val,
        provenance=provenance,
        tests=tests,
        composition=COMPOSITION,
    )


def source(name: str, path: Path, split: str, samples: int, license_: str, notes: str) -> dict:
    """One entry of the manifest's `data` (contract.manifest.DataSource)."""
    return {
        "name": name,
        "path": str(path),
        "split": split,
        "samples": samples,
        "license": license_,
        "notes": notes,
    }


def handwriting_provenance(
    ctx: _Context, train_counts: dict[str, int], val_samples: int, test_samples: dict[str, int]
) -> list[dict]:
    """The manifest's `data` entries: every source with its split, size, licence and how it was made."""
    bengali, spec = ctx.bengali, ctx.spec
    tsv, banglalekha = bengali / GRAPHEMES, bengali / BANGLALEKHA
    rendered = f"{GRAPHEMES_LICENSE}; {FONT_LICENSE}"
    composed = f"{BANGLALEKHA_LICENSE}; {rendered}"
    writers = len(np.unique(ctx.heldout_writers.writers))
    fraction = f"{HELDOUT_WRITER_FRACTION:.0%}"
    held = f"{fraction} of the writers ({writers}) held out, chosen by seed {WRITER_SPLIT_SEED}"
    train_fonts, val_fonts = ", ".join(TRAIN_FONTS), ", ".join(VALIDATION_FONTS)
    count = train_counts.get
    return [
        source(
            "BanglaLekha-Isolated (training writers)",
            banglalekha,
            "train",
            count("banglalekha", 0),
            BANGLALEKHA_LICENSE,
            f"real roots labelled root + no signs; {held}",
        ),
        source(
            "CMATERdb 3.1.2 basic characters",
            bengali / CMATERDB_BASIC.format(split="train"),
            "train",
            count("cmaterdb", 0),
            CMATERDB_LICENSE,
            "real roots labelled root + no signs",
        ),
        source(
            "Compositions: real roots + font-placed signs",
            tsv,
            "train",
            count("compositions", 0),
            composed,
            f"{spec.compose_per_grapheme} per composable grapheme (listed + one-sign combinations), "
            f"training writers' roots, signs of fonts {train_fonts} redrawn with the training pen",
        ),
        source(
            "Pen renders of font graphemes",
            tsv,
            "train",
            count("pen", 0),
            rendered,
            f"{spec.pen_per_font} per grapheme and training font, skeleton redrawn with the training pen; "
            f"{spec.font_only_per_font} for graphemes whose root no real handwriting has, in the pen "
            f"styles {', '.join(spec.font_only_pens)} in turn",
        ),
        source(
            "Classic font renders",
            tsv,
            "train",
            count("fonts", 0),
            rendered,
            f"{spec.font_variants} distorted renders per listed grapheme and training font",
        ),
        source(
            "Held-out-style graphemes with signs",
            tsv,
            "validation",
            val_samples,
            composed,
            "listed graphemes only; compositions on held-out writers' roots "
            f"({spec.heldout_compose_per_grapheme} per grapheme) + pen renders ({spec.heldout_pen_per_font} "
            f"per font), fonts {val_fonts}, the held-out pen and looseness, another seed",
        ),
        # A seeded 6,000 of them also choose the epoch, with the held-out style (training.packing).
        source(
            "BanglaLekha-Isolated (held-out writers)",
            banglalekha,
            "validation and test (banglalekha_heldout_writers)",
            test_samples.get("banglalekha_heldout_writers", 0),
            BANGLALEKHA_LICENSE,
            f"{held}; {len(ctx.heldout_writers.images)} samples of theirs; root + no signs; a seeded "
            "6,000 of them choose the epoch together with the held-out-style graphemes",
        ),
        source(
            "CMATERdb 3.1.2 basic characters",
            bengali / CMATERDB_BASIC.format(split="test"),
            "test (cmaterdb_test)",
            test_samples.get("cmaterdb_test", 0),
            CMATERDB_LICENSE,
            "held out; scored as root + no signs",
        ),
        source(
            "Classic renders in held-out fonts",
            tsv,
            "test (heldout_fonts)",
            test_samples.get("heldout_fonts", 0),
            rendered,
            f"fonts {val_fonts} (the former validation)",
        ),
    ]
