"""`python -m training prepare-data` on small fake releases written here (nothing downloaded): the
files it builds load through the project's own loaders with the shapes, labels, writers and pixel
convention of the shared data folder (uint8; ink-high, CMATERdb ink-low; upright)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import struct
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.__main__ import main
from training.data.bengali import ClassMap, load_class_map, load_cmaterdb_basic
from training.data.digits import load_mnist
from training.data.femnist import load_femnist
from training.data.handwritten_graphemes import load_banglalekha
from training.prepare_data import (
    BENGALI_DIGITS,
    CMATERDB_BASIC_CLASSES,
    ChecksumMismatch,
    Sources,
    banglalekha_classes,
    prepare,
)

WRITERS = ("01_0001_0_08_0916_1990", "02_0002_1_10_0916_1001")


def glyph(size: tuple[int, int] = (28, 28), variant: int = 0) -> np.ndarray:
    """Ink-high: a bar along the top (so a transposed or flipped image shows), and a dot whose place
    makes each file's bytes unique."""
    h, w = size
    image = np.zeros(size, np.uint8)
    image[h // 7 : h // 7 + max(2, h // 10), w // 6 : w - w // 6] = 255
    image[h // 2 + variant % (h // 3), w // 3 + variant // (h // 3) % (w // 3)] = 200
    return image


def assert_upright_ink_high(images: np.ndarray, size: int) -> None:
    assert images.dtype == np.uint8 and images.shape[1:] == (size, size)
    assert (images[:, 0, :] == 0).all() and (images[:, :, 0] == 0).all()  # paper is 0
    bar_row = int(np.argmax(images[0].sum(axis=1)))
    assert bar_row < size // 3 and images[0, bar_row].max() > 200  # the bar is at the top, not the left


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


def save(path: Path, gray_ink_high: np.ndarray, ink_low: bool = True, colour: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = 255 - gray_ink_high if ink_low else gray_ink_high
    if colour:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    assert cv2.imwrite(str(path), image)


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every release in its published layout, a few samples each, under one `--from` folder."""
    src = tmp_path_factory.mktemp("releases")
    # LEAF FEMNIST: floats in [0, 1], paper 1.0, rows of 784, users `<writer>_<form>`.
    for n, users in enumerate([("f0001_12", "f0002_07"), ("f0003_33",)]):
        blob: dict = {"users": list(users), "num_samples": [], "user_data": {}}
        for u, user in enumerate(users):
            x = [(1 - glyph(variant=u + i) / 255).ravel().tolist() for i in range(2)]
            blob["user_data"][user] = {"x": x, "y": [u * 10 + 1, 61]}
            blob["num_samples"].append(2)
        (src / "femnist" / "data" / "all_data").mkdir(parents=True, exist_ok=True)
        (src / "femnist" / "data" / "all_data" / f"all_data_{n}.json").write_text(json.dumps(blob))
    # MNIST and EMNIST IDX; EMNIST stores each image transposed.
    (src / "mnist").mkdir()
    for split, n in (("train", 3), ("t10k", 2)):
        write_idx(
            src / "mnist" / f"{split}-images-idx3-ubyte.gz", np.stack([glyph(variant=i) for i in range(n)])
        )
        write_idx(src / "mnist" / f"{split}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8))
    (src / "emnist").mkdir()
    (src / "emnist" / "emnist-letters-mapping.txt").write_text("1 65 97\n2 66 98\n")
    for part in ("train", "test"):
        stored = np.stack([glyph(variant=i).T for i in range(2)])
        write_idx(src / "emnist" / f"emnist-letters-{part}-images-idx3-ubyte.gz", stored)
        write_idx(src / "emnist" / f"emnist-letters-{part}-labels-idx1-ubyte.gz", np.array([1, 2], np.uint8))
    # CMATERdb: Train/ and Test/, a numbered folder per class, BMPs of any size, dark ink on paper.
    for kind, first, classes in (("basic", 172, CMATERDB_BASIC_CLASSES), ("numerals", 0, BENGALI_DIGITS)):
        for split in ("Train", "Test"):
            for label in range(len(classes)):
                path = src / f"cmaterdb_{kind}" / split / str(first + label) / f"bcc{label:06d}.bmp"
                save(path, glyph((40, 30), label))
    # BanglaLekha-Isolated: Images/<class>/<writer>_<n>.png; class 50 (ঁ) and 51 (a digit) are no
    # root; one file's bytes appear under classes 1 and 2 (label noise in the source): dropped.
    images = src / "banglalekha_isolated" / "BanglaLekha-Isolated" / "Images"
    for bl_class in (1, 2, 50, 51, 61):
        for w, writer in enumerate(WRITERS):
            save(images / str(bl_class) / f"{writer}_{bl_class}.png", glyph((150, 120), bl_class * 2 + w))
    for bl_class in (1, 2):
        save(images / str(bl_class) / f"03_0003_0_09_0916_2000_{bl_class}.png", glyph((150, 120), 99))
    # NumtaDB: training-a.csv naming images in training-a/, colour PNGs; testing-a.csv has no labels.
    numta = src / "numtadb"
    numta.mkdir()
    columns = ["filename", "original filename", "scanid", "digit", "database name original", "database name"]
    with (numta / "training-a.csv").open("w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(columns)
        for i in range(4):
            save(numta / "training-a" / f"a{i:05d}.png", glyph((60, 50), i), colour=True)
            rows.writerow([f"a{i:05d}.png", f"orig{i}.jpg", i, i + 5, "BHDDB", "training-a"])
    (numta / "testing-a.csv").write_text("filename\na99999.png\n")
    # Bengali.AI's class map and a grapheme table.
    (src / "class_map.csv").write_text(
        "component_type,label,component\ngrapheme_root,0,ক\ngrapheme_root,1,খ\n"
        "vowel_diacritic,0,0\nvowel_diacritic,1,া\nconsonant_diacritic,0,0\nconsonant_diacritic,1,ঁ\n",
        encoding="utf-8",
    )
    (src / "graphemes.tsv").write_text("\tgrmRoot\tdepVow\tmod\nকা\tক\tা\t0\nখঁ\tখ\t0\tঁ\n", encoding="utf-8")
    return src


@pytest.fixture(scope="module")
def built(releases: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data")
    main(["prepare-data", "--out", str(out), "--from", str(releases)])
    return out


def test_femnist_from_leaf_json(built: Path):
    samples = load_femnist(built / "femnist" / "femnist.npz")
    assert len(samples.images) == 6
    assert_upright_ink_high(samples.images, 28)
    assert list(samples.chars) == ["1", "z", "B", "z", "1", "z"]  # labels 1, 11, 61 in 0-9A-Za-z
    assert list(samples.writers) == ["f0001"] * 2 + ["f0002"] * 2 + ["f0003"] * 2


def test_mnist_is_copied_and_reads_back(built: Path, releases: Path):
    x, y = load_mnist(built, "train")
    assert x.shape == (3, 28, 28) and list(y) == [0, 1, 2]
    assert_upright_ink_high(x, 28)
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert (built / "mnist" / name).read_bytes() == (releases / "mnist" / name).read_bytes()


def test_emnist_is_turned_upright(built: Path):
    with np.load(built / "emnist" / "emnist_letters_train.npz") as data:
        assert_upright_ink_high(data["images"], 28)
        assert list(data["classes"][data["labels"]]) == ["A", "B"]


def test_cmaterdb_loads_ink_low_through_the_loader(built: Path):
    nfc = [unicodedata.normalize("NFC", c) for c in CMATERDB_BASIC_CLASSES]
    class_map = ClassMap(tuple(c for c in nfc if c != "ঁ"), ("0",), ("0", "ঁ"))
    for split in ("train", "test"):
        samples = load_cmaterdb_basic(built, split, class_map)
        assert samples.unmapped == ("ঁ",) and list(samples.roots) == list(range(49))
        assert_upright_ink_high(255 - samples.images, 32)  # ink-low: paper 255
    with np.load(built / "bengali" / "cmaterdb_numerals_test.npz") as data:
        assert data["images"].shape == (10, 32, 32) and list(data["classes"][data["labels"]]) == list(
            BENGALI_DIGITS
        )


def test_banglalekha_roots_writers_and_noise(built: Path):
    roots = load_banglalekha(built)
    assert_upright_ink_high(roots.images, 64)
    # Classes 1, 2, 61 are roots 2 (অ), 3 (আ), 18 (ক্ষ); ঁ, the digit and the duplicate are gone.
    assert sorted(roots.roots.tolist()) == [2, 2, 3, 3, 18, 18]
    with np.load(built / "bengali" / "banglalekha_isolated.npz") as data:
        assert list(data["writers"]) == list(WRITERS) and sorted(set(data["writer"].tolist())) == [0, 1]
        assert data["labels"].dtype == np.int16 and (data["labels"][:, 1:] == 0).all()
        assert len(data["chars"]) == 84 and set(data["bl_class"].tolist()) == {1, 2, 61}
    with (built / "bengali" / "banglalekha_isolated_classes.csv").open(encoding="utf-8") as f:
        assert list(csv.DictReader(f)) == banglalekha_classes()


def test_numtadb_from_csv_and_colour_images(built: Path):
    with np.load(built / "bengali" / "numtadb.npz") as data:
        assert_upright_ink_high(data["images"], 28)
        assert list(data["labels"]) == [5, 6, 7, 8] and list(data["classes"]) == list(BENGALI_DIGITS)


def test_bengali_tables_are_copied(built: Path):
    assert load_class_map(built / "bengali" / "class_map.csv").roots == ("ক", "খ")
    assert (built / "bengali" / "graphemes.tsv").is_file()


def test_checksums_are_recorded_and_checked(built: Path, releases: Path, tmp_path: Path):
    manifest = json.loads((built / "prepare_manifest.json").read_text())
    name = "mnist/train-images-idx3-ubyte.gz"
    digest = hashlib.sha256((releases / name).read_bytes()).hexdigest()
    assert manifest["sources_sha256"][name] == digest
    assert {"banglalekha_isolated/", "cmaterdb_basic/", "numtadb/"} <= set(manifest["sources_sha256"])
    assert manifest["outputs"]["femnist/femnist.npz"]["samples"] == 6
    # A second build checked against the first's table reads the same releases.
    table = built / "SOURCES.sha256"
    assert f"{digest}  {name}\n" in table.read_text()
    again = tmp_path / "again"
    main(
        [
            "prepare-data",
            "--out",
            str(again),
            "--mnist",
            str(releases / "mnist"),
            "--expect-sha256",
            str(table),
        ]
    )
    assert (again / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()
    with pytest.raises(ChecksumMismatch, match="train-images"):
        prepare(tmp_path / "bad", Sources(mnist=releases / "mnist"), expected={name: "0" * 64})
    assert not (tmp_path / "bad" / "mnist").exists()  # nothing written from a source that failed
