"""Regenerates the sample images in tests/data/ from FEMNIST (run once by hand; tests only read the PNGs).

    HWR_DATA_DIR=../shared/data .venv/bin/python tests/data/make_samples.py

Each sample is a real handwritten character by a writer of the letters model's *validation* split
(never seen in training). `*_scan.png` is the FEMNIST image as stored; `*_photo.jpg` is the same
glyph enlarged onto a synthetic phone-photo background by `training.photo_like.simulated_photo`
(paper tint, lighting gradient, sensor noise, JPEG) — a simulated photo, not a camera capture.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from contract.preprocessing import PreprocessConfig
from training.config import default_data_dir
from training.data.bengali import load_class_map, load_cmaterdb_basic, load_graphemes
from training.data.bengali_render import VALIDATION_FONTS, covers, find_fonts, render
from training.data.digits import load_mnist
from training.data.tasks import load_task
from training.photo_like import simulated_photo

OUT = Path(__file__).parent
JPEG = [cv2.IMWRITE_JPEG_QUALITY, 85]
# (letter, index within the validation split's samples of that letter)
CHOICES = [("A", 1), ("B", 0), ("E", 1), ("H", 7), ("K", 0), ("M", 0), ("R", 0), ("S", 0), ("T", 6), ("W", 0)]


def main() -> None:
    data = load_task("letter", default_data_dir(), val_fraction=0.15, seed=0)
    rng = np.random.default_rng(0)
    cfg = PreprocessConfig()
    labels = data.val.targets["letter"]
    for letter, nth in CHOICES:
        index = np.flatnonzero(labels == ord(letter) - ord("A"))[nth]
        glyph = data.val.images[index]
        cv2.imwrite(str(OUT / f"{letter}_scan.png"), glyph)
        cv2.imwrite(str(OUT / f"{letter}_photo.jpg"), simulated_photo(glyph, rng, cfg), JPEG)
    cv2.imwrite(str(OUT / "blank_photo.jpg"), simulated_photo(None, rng, cfg), JPEG)
    write_digits(np.random.default_rng(10), cfg)
    write_bengali(np.random.default_rng(20))


def write_digits(rng: np.random.Generator, cfg: PreprocessConfig) -> None:
    """The first image of each digit in the official MNIST test set (never trained on), as stored
    and as a simulated photo."""
    images, labels = load_mnist(default_data_dir(), "test")
    (OUT / "digits").mkdir(exist_ok=True)
    for digit in range(10):
        image = images[np.flatnonzero(labels == digit)[0]]
        cv2.imwrite(str(OUT / "digits" / f"{digit}_scan.png"), image)
        cv2.imwrite(str(OUT / "digits" / f"{digit}_photo.jpg"), simulated_photo(image, rng, cfg), JPEG)


BENGALI_RENDERS = 16  # graphemes with signs, drawn at random from graphemes.tsv


def write_bengali(rng: np.random.Generator) -> None:
    """bengali/samples.tsv and its images: the first CMATERdb *test* image of each class (real
    handwriting, never trained on) and graphemes with signs rendered in the held-out fonts."""
    bengali = default_data_dir() / "bengali"
    class_map = load_class_map(bengali / "class_map.csv")
    out = OUT / "bengali"
    out.mkdir(exist_ok=True)
    rows = ["file\tgrapheme\troot\tvowel\tconsonant\tsource"]
    test = load_cmaterdb_basic(default_data_dir(), "test", class_map)
    for root in sorted(set(test.roots.tolist())):
        name = f"cmaterdb_root{root:03d}.png"
        cv2.imwrite(str(out / name), test.images[np.flatnonzero(test.roots == root)[0]])
        rows.append(f"{name}\t{class_map.roots[root]}\t{root}\t0\t0\tCMATERdb 3.1.2 basic test")
    graphemes = load_graphemes(bengali / "graphemes.tsv", class_map).graphemes
    with_signs = [g for g in graphemes if g.vowel or g.consonant]
    fonts = find_fonts(VALIDATION_FONTS)
    for i, index in enumerate(rng.choice(len(with_signs), BENGALI_RENDERS, replace=False)):
        g = with_signs[index]
        font = VALIDATION_FONTS[i % len(VALIDATION_FONTS)]
        if not covers(fonts[font], g.text):
            continue
        name = f"render_{i:02d}.png"
        cv2.imwrite(str(out / name), render(g.text, fonts[font], rng, size=96))
        rows.append(f"{name}\t{g.text}\t{g.root}\t{g.vowel}\t{g.consonant}\trendered in held-out font {font}")
    (out / "samples.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
