"""The Bengali.AI label space and the real Bengali data: class map, grapheme list, CMATERdb.

All strings are NFC-normalised (ZWJ/ZWNJ kept): the class map stores ড় ঢ় য় precomposed,
graphemes.tsv mostly decomposed, and both must meet as equal strings.
"""

from __future__ import annotations

import csv
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract.graphemes import HEADS, ZWJ, compose, starts_with_consonant

BENGALI_DIR = "bengali"
CLASS_MAP = "class_map.csv"
GRAPHEMES = "graphemes.tsv"
CMATERDB_BASIC = "cmaterdb_basic_{split}.npz"

CMATERDB_LICENSE = "CMATERdb: non-commercial use, cite CMATERdb"
GRAPHEMES_LICENSE = "MIT"

# graphemes.tsv names only the first of two consonant signs; the class map has a class for the pair.
TWO_SIGN_CONSONANTS = {"র্": "র্য", "্র": "্র্য"}  # reph + ya-phala, ra-phala + ya-phala


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@dataclass(frozen=True)
class ClassMap:
    """Labels of the three heads, in the class map's id order (index = id)."""

    roots: tuple[str, ...]
    vowels: tuple[str, ...]
    consonants: tuple[str, ...]

    def heads(self) -> dict[str, tuple[str, ...]]:
        return dict(zip(HEADS, (self.roots, self.vowels, self.consonants), strict=True))


def load_class_map(path: Path) -> ClassMap:
    columns: dict[str, dict[int, str]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            columns.setdefault(row["component_type"], {})[int(row["label"])] = nfc(row["component"])

    def ordered(kind: str) -> tuple[str, ...]:
        ids = columns.get(kind, {})
        if sorted(ids) != list(range(len(ids))):
            raise ValueError(f"{path}: {kind} ids are not 0..{len(ids) - 1}")
        return tuple(ids[i] for i in range(len(ids)))

    return ClassMap(ordered("grapheme_root"), ordered("vowel_diacritic"), ordered("consonant_diacritic"))


@dataclass(frozen=True)
class Grapheme:
    text: str  # NFC, what gets rendered
    root: int
    vowel: int
    consonant: int


@dataclass(frozen=True)
class GraphemeList:
    graphemes: tuple[Grapheme, ...]
    relabelled: tuple[str, ...]  # rows whose consonant became the two-sign class
    # Rows that the labels do not compose back into: text → what was done about it.
    exceptions: dict[str, str]


def load_graphemes(path: Path, class_map: ClassMap) -> GraphemeList:
    """The graphemes of graphemes.tsv (columns: grapheme, grmRoot, depVow, mod; "0" = none) as ids.

    Rows equal after NFC count once. Each row's labels are checked by composing them back into its
    text. Where the tsv names only the first of two consonant signs (র্থ্য as reph, গ্র্যা as
    ra-phala) the two-sign class is used, as in Bengali.AI's labels. The rows that still differ
    are listed in `exceptions` with what was done.
    """
    graphemes: dict[str, Grapheme] = {}
    relabelled: list[str] = []
    exceptions: dict[str, str] = {}
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    for text, root, vowel, consonant in (row[:4] for row in rows[1:] if row):
        text, root, vowel, consonant = nfc(text), nfc(root), nfc(vowel), nfc(consonant)
        pair = TWO_SIGN_CONSONANTS.get(consonant)
        if compose(root, vowel, consonant) != text and pair and compose(root, vowel, pair) == text:
            consonant = pair
            relabelled.append(text)
        composed = compose(root, vowel, consonant)
        if composed != text and composed.replace(ZWJ, "") == text:
            # As written it shapes as reph + য…, which contradicts its labels (root র + ya-phala).
            exceptions[text] = f"the tsv drops the ZWJ its labels need: rendered as {composed!r}"
            text = composed
        elif composed != text:
            # E.g. reph + ra-phala (র্ত্রী): the class map has no class for the pair.
            exceptions[text] = f"no class-map triple composes it: rendered as written, labels {composed!r}"
        ids = (
            class_map.roots.index(root),
            class_map.vowels.index(vowel),
            class_map.consonants.index(consonant),
        )
        graphemes.setdefault(text, Grapheme(text, *ids))
    return GraphemeList(tuple(graphemes.values()), tuple(relabelled), exceptions)


def sign_combinations(class_map: ClassMap, listed: tuple[Grapheme, ...]) -> tuple[Grapheme, ...]:
    """Graphemes of the label space beyond the list: every consonant/conjunct root with each single
    vowel sign and with each single consonant sign, the ones not listed already. They teach the signs
    apart from the roots they happen to be listed with (Bengali.AI's test had unlisted graphemes)."""
    known = {g.text for g in listed}
    found: dict[str, Grapheme] = {}
    for r, root in enumerate(class_map.roots):
        if not starts_with_consonant(root):
            continue
        pairs = [(v, 0) for v in range(1, len(class_map.vowels))]
        pairs += [(0, c) for c in range(1, len(class_map.consonants))]
        for v, c in pairs:
            text = compose(root, class_map.vowels[v], class_map.consonants[c])
            if text not in known:
                found.setdefault(text, Grapheme(text, r, v, c))
    return tuple(found.values())


@dataclass(frozen=True)
class RootSamples:
    images: np.ndarray  # N×32×32 uint8, ink-low (dark ink on light paper)
    roots: np.ndarray  # N root ids of the class map
    unmapped: tuple[str, ...]  # CMATERdb classes that are no root of the class map (dropped)


def load_cmaterdb_basic(data_dir: Path, split: str, class_map: ClassMap) -> RootSamples:
    """CMATERdb 3.1.2 basic characters; each class's Unicode mapped to its class-map root.

    Every class is a root except ঁ (candrabindu, a consonant sign): its samples are dropped,
    because a lone sign is no grapheme of the label space.
    """
    path = data_dir / BENGALI_DIR / CMATERDB_BASIC.format(split=split)
    with np.load(path, allow_pickle=False) as data:
        images, labels, classes = data["images"], data["labels"], [nfc(str(c)) for c in data["classes"]]
    root_of_class = np.array([class_map.roots.index(c) if c in class_map.roots else -1 for c in classes])
    roots = root_of_class[labels]
    keep = roots >= 0
    unmapped = tuple(c for c, r in zip(classes, root_of_class, strict=True) if r < 0)
    return RootSamples(images[keep], roots[keep], unmapped)
