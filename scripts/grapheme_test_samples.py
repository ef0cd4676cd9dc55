"""Write tests/data/bengali/heldout_style_NN.png: graphemes with signs made the held-out way.

Each is a BanglaLekha root by a held-out writer (never trained on) with the signs of a validation
font written with the held-out pen (training.data.handwritten_graphemes), one per listed grapheme
drawn at random from those whose root has real handwriting. The rows are appended to samples.tsv.

    HWR_DATA_DIR=../shared/data .venv/bin/python scripts/grapheme_test_samples.py [COUNT]
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from training.config import default_data_dir
from training.data.bengali import BENGALI_DIR, CLASS_MAP, GRAPHEMES, load_class_map, load_graphemes
from training.data.bengali_render import VALIDATION_FONTS, find_fonts
from training.data.handwritten_graphemes import (
    HELDOUT_RECIPE,
    Recipe,
    composable,
    compositions,
    load_banglalekha,
    split_by_writer,
)

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "bengali"
SOURCE = "held-out style: held-out writer's BanglaLekha root + validation-font signs, held-out pen"


def main(count: int = 16, seed: int = 5) -> None:
    data_dir = default_data_dir()
    class_map = load_class_map(data_dir / BENGALI_DIR / CLASS_MAP)
    listed = load_graphemes(data_dir / BENGALI_DIR / GRAPHEMES, class_map).graphemes
    _, heldout = split_by_writer(load_banglalekha(data_dir))
    candidates = composable(listed, class_map, {int(r) for r in np.unique(heldout.roots)})
    picks = np.random.default_rng(seed).choice(len(candidates), count, replace=False)
    chosen = [candidates[i] for i in picks]
    held = HELDOUT_RECIPE
    recipe = Recipe(VALIDATION_FONTS, held.pen, held.looseness, held.seed + seed)
    samples = compositions(chosen, class_map, heldout, find_fonts(), 1, recipe, workers=1)
    rows = []
    for i, (image, grapheme) in enumerate(samples):
        name = f"heldout_style_{i:02d}.png"
        cv2.imwrite(str(OUT / name), image)
        rows.append(
            f"{name}\t{grapheme.text}\t{grapheme.root}\t{grapheme.vowel}\t{grapheme.consonant}\t{SOURCE}"
        )
    with (OUT / "samples.tsv").open("a", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    print(f"wrote {len(rows)} samples to {OUT}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 16)
