"""A tiny Bengali data directory written in code: class map, graphemes.tsv and CMATERdb-format npz.

The labels are real Unicode (a few roots and every sign), so composition and rendering are real;
only the sizes are small. Nothing is read from ../shared/data.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import features

from training.data.bengali_render import fonts_available
from training.data.handwriting_task import HandwritingSpec, build_handwriting_task
from training.data.tasks import TaskData

PRECOMPOSED_YYA = "\u09df"  # য় as the class map stores it; NFC decomposes it to য + ়
ROOTS = ("ক", "খ", "থ", "ত", "প", "র", "য", PRECOMPOSED_YYA, "ক্ষ", "ৎ")
VOWELS = ("0", "া", "ি", "ী", "ে", "ো")
CONSONANTS = ("0", "ঁ", "র্", "র্য", "্য", "্র", "্র্য")

# (grapheme, root, vowel, consonant) as graphemes.tsv writes them, quirks included.
GRAPHEME_ROWS = (
    ("ক", "ক", "0", "0"),
    ("কি", "ক", "ি", "0"),
    ("খা", "খ", "া", "0"),
    ("ক্ষে", "ক্ষ", "ে", "0"),
    ("পেঁ", "প", "ে", "ঁ"),
    ("ৎ", "ৎ", "0", "0"),  # some fonts (Likhan, Jamrul) have no glyph for it
    ("র্থ্য", "থ", "0", "র্"),  # only the first of two signs named: class র্য
    ("প্র্যা", "প", "া", "্র"),  # only the first of two signs named: class ্র্য
    ("র্যো", "র", "ো", "্য"),  # ZWJ missing: as written, reph + যো
    ("র্ত্রী", "ত", "ী", "র্"),  # reph + ra-phala: no class for the pair
    ("য\u09bcে", "য\u09bc", "ে", "0"),  # decomposed য়
    (PRECOMPOSED_YYA + "ে", "য\u09bc", "ে", "0"),  # the same grapheme precomposed: one after NFC
)
CMATERDB_CLASSES = ("ক", "খ", PRECOMPOSED_YYA, "ঁ")  # ঁ is a sign, no root
SAMPLES_PER_CLASS = {"train": 6, "test": 3}

requires_bengali_rendering = pytest.mark.skipif(
    not features.check("raqm") or not fonts_available(),
    reason="Bengali rendering needs Pillow's raqm (libfribidi0) and the Bengali fonts: "
    "run scripts/install-system-deps.sh",
)


def write_class_map(path: Path) -> None:
    lines = ["component_type,label,component"]
    for kind, labels in (
        ("grapheme_root", ROOTS),
        ("vowel_diacritic", VOWELS),
        ("consonant_diacritic", CONSONANTS),
    ):
        lines += [f"{kind},{i},{label}" for i, label in enumerate(labels)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_graphemes(path: Path) -> None:
    lines = ["\tgrmRoot\tdepVow\tmod", *("\t".join(row) for row in GRAPHEME_ROWS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_cmaterdb(path: Path, samples_per_class: int, seed: int) -> None:
    """32×32 ink-low scribbles (dark strokes on white), `samples_per_class` of each class."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(len(CMATERDB_CLASSES)):
        for _ in range(samples_per_class):
            image = np.full((32, 32), 255, np.uint8)
            points = rng.integers(4, 28, size=(4, 2))
            cv2.polylines(image, [points.reshape(-1, 1, 2).astype(np.int32)], False, 0, 2)
            images.append(image)
            labels.append(label)
    np.savez_compressed(
        path,
        images=np.stack(images),
        labels=np.array(labels, np.uint8),
        classes=np.array(CMATERDB_CLASSES),
    )


def write_fake_bengali(root: Path) -> Path:
    """`root/bengali/{class_map.csv, graphemes.tsv, cmaterdb_basic_{train,test}.npz,
    banglalekha_isolated.npz}`; returns root."""
    bengali = root / "bengali"
    bengali.mkdir(parents=True)
    write_class_map(bengali / "class_map.csv")
    write_graphemes(bengali / "graphemes.tsv")
    for seed, (split, n) in enumerate(SAMPLES_PER_CLASS.items()):
        write_cmaterdb(bengali / f"cmaterdb_basic_{split}.npz", n, seed)
    write_banglalekha(bengali / "banglalekha_isolated.npz")
    return root


BANGLALEKHA_CLASSES = ("ক", "খ", "প", "থ")  # roots the fake BanglaLekha has, as class-map labels
BANGLALEKHA_WRITERS = 10


def write_banglalekha(path: Path, seed: int = 7) -> None:
    """BanglaLekha-format npz: 64×64 ink-high scribbles, one per class and writer, labels N×3
    (root id, 0, 0) and writer indices."""
    rng = np.random.default_rng(seed)
    images, labels, writers = [], [], []
    for writer in range(BANGLALEKHA_WRITERS):
        for char in BANGLALEKHA_CLASSES:
            image = np.zeros((64, 64), np.uint8)
            points = rng.integers(10, 54, size=(5, 2))
            cv2.polylines(image, [points.reshape(-1, 1, 2).astype(np.int32)], False, 255, 4)
            images.append(image)
            labels.append((ROOTS.index(char), 0, 0))
            writers.append(writer)
    np.savez_compressed(
        path,
        images=np.stack(images),
        labels=np.array(labels, np.int16),
        writer=np.array(writers, np.int32),
        writers=np.array([f"w{i}" for i in range(BANGLALEKHA_WRITERS)]),
    )


# One of each kind of sample per grapheme (and font): the handwriting task at its smallest.
SMALL_HANDWRITING = HandwritingSpec(
    compose_per_grapheme=1,
    pen_per_font=1,
    font_variants=1,
    heldout_compose_per_grapheme=1,
    heldout_pen_per_font=1,
)


def build_small_task(data_dir: Path, cache_dir: Path, **changes: Any) -> TaskData:
    """The handwriting grapheme task on a fake data directory: seed 0, SMALL_HANDWRITING with
    `changes`, one worker."""
    spec = replace(SMALL_HANDWRITING, **changes)
    return build_handwriting_task(data_dir, 0, spec, cache_dir=cache_dir, workers=1)
