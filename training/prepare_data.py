"""`python -m training prepare-data`: the training data folder, built from the public original releases.

Writes exactly the files the loaders in training/data/ read (the layout of ../shared/data):

- LEAF FEMNIST `all_data_*.json` → `femnist/femnist.npz`
- MNIST IDX, the four `*-ubyte.gz` → `mnist/*-ubyte.gz` (copied as they are, once they parse)
- EMNIST IDX (`gzip.zip` unpacked), one split → `emnist/emnist_<split>_{train,test}.npz`
- CMATERdb 3.1.2 basic characters, class folders → `bengali/cmaterdb_basic_{train,test}.npz`
- CMATERdb 3.1.1 numerals, class folders → `bengali/cmaterdb_numerals_{train,test}.npz`
- BanglaLekha-Isolated, folders `1`…`84` of PNGs → `bengali/banglalekha_isolated.npz` and
  `bengali/banglalekha_isolated_classes.csv`
- NumtaDB, `training-*.csv` and their image folders → `bengali/numtadb.npz`
- Bengali.AI `class_map.csv` and `graphemes.tsv` → `bengali/class_map.csv`, `bengali/graphemes.tsv`

Pixel conventions follow the shared folder's README: every array uint8, ink-high (paper 0, ink 255)
except CMATERdb, which stays ink-low (paper 255) as the loaders and the committed models expect.
Which way a source image is drawn is read from its border (paper is what the frame mostly shows), so
a release in either polarity comes out the same. Images are fitted into the square keeping their
aspect ratio, centred on paper. FEMNIST and EMNIST keep their 28x28 frames as released (EMNIST's IDX
images are stored transposed and are turned upright here).

Checksums: no published sha256 is known here for these releases (their sites give none, or give
other digests that cannot be checked offline), so nothing is compared against a built-in table.
Instead the sha256 of every file read is recorded: per file for file releases, and for folder
releases one digest over the sorted `sha256  path` lines of all their files (what `sha256sum` of the
tree would list), in `SOURCES.sha256` (sha256sum format) and `prepare_manifest.json` in the output
folder. `--expect-sha256` takes such a table (or `NAME=HEX`) and refuses a source that differs, so a
second machine can check that it read the same releases as the first.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from training.data.bengali import load_class_map, load_graphemes
from training.data.idx import load_idx_pair
from training.data.labels import FEMNIST_CLASSES

IMAGE_SUFFIXES = {".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif"}
MANIFEST = "prepare_manifest.json"
SOURCES_TABLE = "SOURCES.sha256"

# CMATERdb 3.1.2's 50 classes in the release's folder order (11 vowels, 39 consonants and signs),
# as the `classes` of the shared cmaterdb_basic_*.npz spell them (ড় ঢ় য় with a nukta, decomposed).
CMATERDB_BASIC_CLASSES: tuple[str, ...] = (
    *"অআইঈউঊঋএঐওঔকখগঘঙচছজঝঞটঠডঢণতথদধনপফবভমযরলশষসহ",
    "ড\u09bc",
    "ঢ\u09bc",
    "য\u09bc",
    *"ৎংঃঁ",
)
BENGALI_DIGITS: tuple[str, ...] = tuple("০১২৩৪৫৬৭৮৯")

# BanglaLekha-Isolated's 84 classes (folder `n` is class n): the 50 basic characters in CMATERdb's
# order, the 10 digits, then 24 conjuncts. Each kept class is a Bengali.AI grapheme root (its id in
# class_map.csv) with no signs; the lone ঁ (a consonant sign) and the digits are no root and are left out.
BANGLALEKHA_CONJUNCTS: tuple[tuple[str, int], ...] = (
    ("ক্ষ", 18), ("ব্দ", 109), ("ঙ্গ", 36), ("স্ক", 148), ("স্ফ", 154), ("স্থ", 151),
    ("চ্ছ", 40), ("ক্ত", 16), ("স্ন", 152), ("ষ্ণ", 143), ("ম্প", 117), ("হ্ম", 162),
    ("প্ত", 98), ("ম্ব", 118), ("ণ্ড", 62), ("দ্ভ", 77), ("ত্থ", 67), ("ষ্ঠ", 142),
    ("ল্প", 129), ("ষ্প", 144), ("ন্দ", 89), ("ন্ধ", 91), ("স্ম", 156), ("ণ্ঠ", 61),
)  # fmt: skip
# Class-map root ids of the 49 basic characters (CMATERdb order, ঁ excluded).
BANGLALEKHA_BASIC_ROOTS: tuple[int, ...] = (
    2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 22, 23, 29, 31, 38, 42, 43, 48, 49, 53, 55, 56, 58,
    59, 64, 71, 72, 79, 81, 96, 103, 107, 113, 115, 122, 123, 124, 133, 139, 147, 159, 165, 166,
    167, 164, 0, 1,
)  # fmt: skip
# BanglaLekha's class list spells ড় ঢ় য় precomposed, unlike CMATERdb's.
PRECOMPOSED = {"ড\u09bc": "\u09dc", "ঢ\u09bc": "\u09dd", "য\u09bc": "\u09df"}
BANGLALEKHA_WRITER_FIELDS = 6  # `01_0001_0_08_0916_1990_3.png`: the first six fields name the writer
HEAD_COLUMNS = ("grapheme_root", "vowel_diacritic", "consonant_diacritic")


class ChecksumMismatch(ValueError):
    """A source file (or folder) is not the one `--expect-sha256` names."""


@dataclass
class Checksums:
    """The sha256 of everything read, by name (`<source>/<file>`, or `<source>/` for a folder
    release's digest), checked against the expected ones as each source is read."""

    expected: dict[str, str] = field(default_factory=dict)
    read: dict[str, str] = field(default_factory=dict)

    def record(self, name: str, digest: str) -> None:
        want = self.expected.get(name)
        if want is not None and want.lower() != digest:
            raise ChecksumMismatch(f"{name}: sha256 {digest}, expected {want}")
        self.read[name] = digest

    def read_file(self, name: str, path: Path) -> bytes:
        data = path.read_bytes()
        self.record(name, hashlib.sha256(data).hexdigest())
        return data

    def table(self) -> str:
        return "".join(f"{digest}  {name}\n" for name, digest in sorted(self.read.items()))


def parse_expectations(values: Iterable[str]) -> dict[str, str]:
    """`--expect-sha256` values: a file in sha256sum format (`HEX  NAME` lines), or `NAME=HEX`."""
    expected: dict[str, str] = {}
    for value in values:
        path = Path(value)
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip() and not line.startswith("#"):
                    digest, name = line.split(maxsplit=1)
                    expected[name.strip().lstrip("*")] = digest
        elif "=" in value:
            name, digest = value.rsplit("=", 1)
            expected[name] = digest
        else:
            raise ValueError(f"--expect-sha256 {value!r}: neither a checksum file nor NAME=HEX")
    return expected


class FolderDigest:
    """One digest for a folder release: the sha256 of its sorted `sha256  relative/path` lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, relative: str, data: bytes) -> None:
        self.lines.append(f"{hashlib.sha256(data).hexdigest()}  {relative}\n")

    def digest(self) -> str:
        return hashlib.sha256("".join(sorted(self.lines)).encode()).hexdigest()


# --- images -----------------------------------------------------------------------------------------


def decode_gray(data: bytes, where: str) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"{where}: not a readable image")
    return image


def ink_high(gray: np.ndarray) -> np.ndarray:
    """Paper 0, ink high: inverted when the border (mostly paper in a character crop) is light."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return 255 - gray if np.median(border) > 127 else gray


def fit_square(image: np.ndarray, size: int) -> np.ndarray:
    """An ink-high image fitted into size x size, aspect ratio kept, centred on paper (0)."""
    h, w = image.shape
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interpolation)
    out = np.zeros((size, size), np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top : top + nh, left : left + nw] = resized
    return out


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def natural_key(path: Path) -> tuple[int, str]:
    return (int(path.name), "") if path.name.isdigit() else (1 << 30, path.name)


# --- output -----------------------------------------------------------------------------------------


@dataclass
class Output:
    root: Path
    written: dict[str, dict] = field(default_factory=dict)

    def npz(self, relative: str, samples: int, **arrays: np.ndarray) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
        self._note(relative, samples)

    def copy(self, relative: str, data: bytes) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self._note(relative, None)

    def _note(self, relative: str, samples: int | None) -> None:
        digest = hashlib.sha256((self.root / relative).read_bytes()).hexdigest()
        self.written[relative] = {"sha256": digest, "samples": samples}
        print(f"wrote {self.root / relative}" + ("" if samples is None else f" ({samples} samples)"))


# --- sources ----------------------------------------------------------------------------------------


def femnist(src: Path, sums: Checksums, out: Output) -> None:
    """LEAF's `data/femnist/data/all_data/all_data_*.json`: {"users", "user_data": {user: {"x", "y"}}}.

    LEAF writes each image as 784 floats in [0, 1] from the NIST scan (paper 1.0, ink 0.0), row by
    row, upright; labels are 0-61 in FEMNIST_CLASSES order. A LEAF user `f0005_26` is NIST writer
    `f0005` (the suffix is the form it came from), the writer id the loaders split by.
    """
    files = sorted(src.rglob("all_data_*.json"), key=lambda p: p.name)
    if not files:
        raise FileNotFoundError(f"{src}: no all_data_*.json (LEAF FEMNIST)")
    images: list[np.ndarray] = []
    labels: list[int] = []
    writers: list[str] = []
    for path in files:
        blob = json.loads(sums.read_file(f"femnist/{path.name}", path))
        for user in blob["users"]:
            data = blob["user_data"][user]
            x = np.asarray(data["x"], np.float32).reshape(-1, 28, 28)
            images.append(np.round((1.0 - np.clip(x, 0.0, 1.0)) * 255).astype(np.uint8))
            labels += [int(y) for y in data["y"]]
            writers += [user.split("_")[0]] * len(x)
    stacked = np.concatenate(images)
    if len(stacked) != len(labels) or max(labels) >= len(FEMNIST_CLASSES):
        raise ValueError(f"{src}: x and y disagree, or labels outside 0-{len(FEMNIST_CLASSES) - 1}")
    out.npz(
        "femnist/femnist.npz",
        len(labels),
        images=stacked,
        labels=np.asarray(labels, np.uint8),
        writers=np.asarray(writers),
        classes=np.asarray(FEMNIST_CLASSES),
    )


MNIST_FILES = tuple(
    f"{split}-{kind}-ubyte.gz" for split in ("train", "t10k") for kind in ("images-idx3", "labels-idx1")
)


def mnist(src: Path, sums: Checksums, out: Output) -> None:
    """The four official gzip'd IDX files, copied as they are once each pair parses as 28x28 + labels."""
    blobs = {name: sums.read_file(f"mnist/{name}", src / name) for name in MNIST_FILES}
    for split in ("train", "t10k"):
        x, y = idx_pair(blobs[f"{split}-images-idx3-ubyte.gz"], blobs[f"{split}-labels-idx1-ubyte.gz"])
        if x.shape[1:] != (28, 28) or y.max() > 9:
            raise ValueError(f"{src}: MNIST {split} is {x.shape}, labels up to {y.max()}")
    for name, data in blobs.items():
        out.copy(f"mnist/{name}", data)


def idx_pair(images: bytes, labels: bytes, transposed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The project's own IDX reader (training.data.idx) on bytes already read and checksummed."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        paths = Path(tmp) / "images.gz", Path(tmp) / "labels.gz"
        for path, data in zip(paths, (images, labels), strict=True):
            path.write_bytes(data if data[:2] == b"\x1f\x8b" else gzip.compress(data, 1))
        return load_idx_pair(*paths, transposed=transposed)


def emnist(src: Path, split: str, sums: Checksums, out: Output) -> None:
    """EMNIST's gzip release (`gzip.zip` unpacked): `emnist-<split>-{train,test}-*-ubyte.gz` and
    `emnist-<split>-mapping.txt` (`label code [code…]`, the codes ASCII). Images are stored
    transposed; written upright, ink-high, with the source's labels and `classes[label]` (the
    first code of each label; "" where a label has none, e.g. 0 in `letters`)."""
    mapping_path = src / f"emnist-{split}-mapping.txt"
    mapping: dict[int, str] = {}
    for line in sums.read_file(f"emnist/{mapping_path.name}", mapping_path).decode().splitlines():
        if line.strip():
            label, code, *_ = line.split()
            mapping[int(label)] = chr(int(code))
    classes = np.asarray([mapping.get(i, "") for i in range(max(mapping) + 1)])
    for part in ("train", "test"):
        names = [f"emnist-{split}-{part}-{kind}-ubyte.gz" for kind in ("images-idx3", "labels-idx1")]
        blobs = [sums.read_file(f"emnist/{name}", src / name) for name in names]
        x, y = idx_pair(blobs[0], blobs[1], transposed=True)
        if y.max() >= len(classes):
            raise ValueError(f"{src}: EMNIST {split} {part} has labels beyond its mapping")
        out.npz(
            f"emnist/emnist_{split}_{part}.npz",
            len(y),
            images=x,
            labels=y.astype(np.uint8 if len(classes) <= 256 else np.int64),
            classes=classes,
        )


def split_folders(src: Path) -> dict[str, Path]:
    """CMATERdb's `Train`/`Test` (any case, `Training`/`Testing` too), each one folder per class."""
    found = {}
    for d in sorted(p for p in src.iterdir() if p.is_dir()):
        for split in ("train", "test"):
            if d.name.lower().startswith(split):
                found[split] = d
    if set(found) != {"train", "test"}:
        raise FileNotFoundError(f"{src}: expected a Train and a Test folder, found {sorted(found)}")
    return found


def cmaterdb(src: Path, kind: str, sums: Checksums, out: Output) -> None:
    """CMATERdb folders: `Train/` and `Test/`, each one folder per class in the release's order
    (numbered folders sort by number), images any size and polarity. Written 32x32, ink-low."""
    classes = CMATERDB_BASIC_CLASSES if kind == "basic" else BENGALI_DIGITS
    folder_digest = FolderDigest()
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split, root in split_folders(src).items():
        class_dirs = sorted((d for d in root.iterdir() if d.is_dir()), key=natural_key)
        if len(class_dirs) != len(classes):
            raise ValueError(f"{root}: {len(class_dirs)} class folders, CMATERdb {kind} has {len(classes)}")
        images, labels = [], []
        for label, class_dir in enumerate(class_dirs):
            for path in image_files(class_dir):
                data = path.read_bytes()
                folder_digest.add(path.relative_to(src).as_posix(), data)
                images.append(255 - fit_square(ink_high(decode_gray(data, str(path))), 32))
                labels.append(label)
        splits[split] = np.stack(images), np.asarray(labels, np.uint8)
    sums.record(f"cmaterdb_{kind}/", folder_digest.digest())
    for split, (images_array, labels_array) in splits.items():
        out.npz(
            f"bengali/cmaterdb_{kind}_{split}.npz",
            len(labels_array),
            images=images_array,
            labels=labels_array,
            classes=np.asarray(classes),
        )


def banglalekha_classes() -> list[dict[str, str]]:
    """The 84 classes with their Bengali.AI ids, as `banglalekha_isolated_classes.csv` lists them."""
    rows = []
    roots = iter(BANGLALEKHA_BASIC_ROOTS)
    for i, char in enumerate(CMATERDB_BASIC_CLASSES, start=1):
        if char == "ঁ":
            note = "chandrabindu alone: consonant_diacritic 1 without a root"
            rows.append((i, char, "", "0", "1", "0", note))
        else:
            rows.append((i, PRECOMPOSED.get(char, char), str(next(roots)), "0", "0", "1", "basic"))
    for i, char in enumerate(BENGALI_DIGITS, start=51):
        rows.append((i, char, "", "", "", "0", "digit: not in Bengali.AI label space"))
    for i, (char, root) in enumerate(BANGLALEKHA_CONJUNCTS, start=61):
        rows.append((i, char, str(root), "0", "0", "1", "compound"))
    columns = ("bl_class", "char", *HEAD_COLUMNS, "usable", "note")
    return [dict(zip(columns, map(str, row), strict=True)) for row in rows]


def class_folders(src: Path) -> Path:
    """The folder holding BanglaLekha's `1`…`84` (the release nests it, e.g. `…/Images/`)."""
    for parent, dirs, _ in os.walk(src):
        if "1" in dirs and "61" in dirs:
            return Path(parent)
    raise FileNotFoundError(f"{src}: no class folders 1…84 (BanglaLekha-Isolated)")


def banglalekha(src: Path, sums: Checksums, out: Output) -> None:
    """BanglaLekha-Isolated: one folder per class (`1`…`84`) of PNG crops named after the form and
    writer. Kept: the 73 classes that are grapheme roots. A file whose bytes occur under two
    classes is label noise and is dropped everywhere. Written 64x64, ink-high."""
    table = banglalekha_classes()
    root = class_folders(src)
    folder_digest = FolderDigest()
    seen: dict[str, set[int]] = {}
    samples: list[tuple[int, str, str, np.ndarray]] = []  # class, writer, content hash, image
    for row in table:
        class_dir = root / row["bl_class"]
        if not class_dir.is_dir():
            print(f"note: {class_dir} missing: class {row['bl_class']} ({row['char']}) has no samples")
            continue
        for path in image_files(class_dir):
            data = path.read_bytes()
            folder_digest.add(path.relative_to(src).as_posix(), data)
            content = hashlib.sha256(data).hexdigest()
            seen.setdefault(content, set()).add(int(row["bl_class"]))
            if row["usable"] == "1":
                writer = "_".join(path.stem.split("_")[:BANGLALEKHA_WRITER_FIELDS])
                image = fit_square(ink_high(decode_gray(data, str(path))), 64)
                samples.append((int(row["bl_class"]), writer, content, image))
    sums.record("banglalekha_isolated/", folder_digest.digest())
    kept = [s for s in samples if len(seen[s[2]]) == 1]
    if not kept:
        raise ValueError(f"{src}: no usable BanglaLekha-Isolated samples")
    root_of = {int(r["bl_class"]): int(r["grapheme_root"]) for r in table if r["usable"] == "1"}
    writers = sorted({s[1] for s in kept})
    writer_index = {w: i for i, w in enumerate(writers)}
    bl_class = np.asarray([s[0] for s in kept], np.int16)
    labels = np.zeros((len(kept), 3), np.int16)
    labels[:, 0] = [root_of[c] for c in bl_class]
    out.npz(
        "bengali/banglalekha_isolated.npz",
        len(kept),
        images=np.stack([s[3] for s in kept]),
        labels=labels,
        bl_class=bl_class,
        writer=np.asarray([writer_index[s[1]] for s in kept], np.int32),
        writers=np.asarray(writers),
        label_columns=np.asarray(HEAD_COLUMNS),
        chars=np.asarray([r["char"] for r in table]),
    )
    text = io.StringIO()
    writer_csv = csv.DictWriter(text, fieldnames=list(table[0]))  # CRLF rows, as the csv module writes
    writer_csv.writeheader()
    writer_csv.writerows(table)
    out.copy("bengali/banglalekha_isolated_classes.csv", text.getvalue().encode("utf-8"))


def numtadb_rows(src: Path, sums: Checksums) -> Iterator[tuple[Path, int]]:
    """(image path, digit) of every labelled row: the `training-*.csv` files name each image's
    `filename`, its `digit` and its folder (`database name`); unlabelled CSVs are skipped."""
    for csv_path in sorted(src.rglob("*.csv")):
        text = sums.read_file(f"numtadb/{csv_path.relative_to(src).as_posix()}", csv_path).decode("utf-8-sig")
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "digit" not in reader.fieldnames or "filename" not in reader.fieldnames:
            continue
        for row in reader:
            folder = row.get("database name") or csv_path.stem
            yield csv_path.parent / folder / row["filename"], int(row["digit"])


def numtadb(src: Path, sums: Checksums, out: Output) -> None:
    """NumtaDB's labelled sets (`training-a.csv` … with their image folders), written 28x28, ink-high."""
    folder_digest = FolderDigest()
    images, labels = [], []
    for path, digit in numtadb_rows(src, sums):
        data = path.read_bytes()
        folder_digest.add(path.relative_to(src).as_posix(), data)
        images.append(fit_square(ink_high(decode_gray(data, str(path))), 28))
        labels.append(digit)
    if not images:
        raise FileNotFoundError(f"{src}: no CSV with filename and digit columns (NumtaDB)")
    sums.record("numtadb/", folder_digest.digest())
    out.npz(
        "bengali/numtadb.npz",
        len(labels),
        images=np.stack(images),
        labels=np.asarray(labels, np.uint8),
        classes=np.asarray(BENGALI_DIGITS),
    )


def bengali_tables(class_map: Path | None, graphemes: Path | None, sums: Checksums, out: Output) -> None:
    """Bengali.AI's `class_map.csv` and the grapheme table, copied; then parsed as the loaders do."""
    if class_map is None:
        return
    data = sums.read_file("bengaliai/class_map.csv", class_map)
    out.copy("bengali/class_map.csv", data)
    parsed = load_class_map(out.root / "bengali" / "class_map.csv")
    if graphemes is not None:
        out.copy("bengali/graphemes.tsv", sums.read_file("bengaliai/graphemes.tsv", graphemes))
        load_graphemes(out.root / "bengali" / "graphemes.tsv", parsed)


# --- the command ------------------------------------------------------------------------------------

# Where each release is looked for under `--from SRC` when no flag names it.
DEFAULT_LOCATIONS = {
    "femnist": "femnist",
    "mnist": "mnist",
    "emnist": "emnist",
    "cmaterdb_basic": "cmaterdb_basic",
    "cmaterdb_numerals": "cmaterdb_numerals",
    "banglalekha": "banglalekha_isolated",
    "numtadb": "numtadb",
    "class_map": "class_map.csv",
    "graphemes": "graphemes.tsv",
}


@dataclass(frozen=True)
class Sources:
    femnist: Path | None = None
    mnist: Path | None = None
    emnist: Path | None = None
    cmaterdb_basic: Path | None = None
    cmaterdb_numerals: Path | None = None
    banglalekha: Path | None = None
    numtadb: Path | None = None
    class_map: Path | None = None
    graphemes: Path | None = None

    @classmethod
    def resolve(cls, root: Path | None, **given: Path | None) -> Sources:
        """Each source: its flag, else `root/<default name>` where that exists."""
        found: dict[str, Path | None] = {}
        for name, default in DEFAULT_LOCATIONS.items():
            path = given.get(name)
            if path is None and root is not None and (root / default).exists():
                path = root / default
            found[name] = path
        return cls(**found)


def prepare(
    out_dir: Path, sources: Sources, emnist_split: str = "letters", expected: dict[str, str] | None = None
) -> dict:
    """Build every source given into `out_dir`; the manifest (also written as prepare_manifest.json)."""
    if not any(vars(sources).values()):
        raise ValueError("no source given: pass --from SRC or a --<source> flag")
    sums = Checksums(expected or {})
    out = Output(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if sources.femnist:
        femnist(sources.femnist, sums, out)
    if sources.mnist:
        mnist(sources.mnist, sums, out)
    if sources.emnist:
        emnist(sources.emnist, emnist_split, sums, out)
    if sources.cmaterdb_basic:
        cmaterdb(sources.cmaterdb_basic, "basic", sums, out)
    if sources.cmaterdb_numerals:
        cmaterdb(sources.cmaterdb_numerals, "numerals", sums, out)
    if sources.banglalekha:
        banglalekha(sources.banglalekha, sums, out)
    if sources.numtadb:
        numtadb(sources.numtadb, sums, out)
    bengali_tables(sources.class_map, sources.graphemes, sums, out)
    missing = sorted(set(sums.expected) - set(sums.read))
    manifest = {
        "sources": {name: str(path) for name, path in vars(sources).items() if path is not None},
        "sources_sha256": dict(sorted(sums.read.items())),
        "expected_not_read": missing,
        "outputs": out.written,
        "checksums_note": (
            "sha256 of what was read; no published sha256 was compared unless --expect-sha256 gave one"
        ),
    }
    (out_dir / SOURCES_TABLE).write_text(sums.table(), encoding="utf-8")
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return manifest
