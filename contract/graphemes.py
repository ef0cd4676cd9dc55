"""Bengali graphemes from their three components (the Bengali.AI label space). Pure: no web framework.

A grapheme is a root (a vowel, consonant or conjunct), an optional vowel sign and an optional
consonant sign; "0" means "none". Unicode stores them in logical order, not in the order they are
drawn, and the consonant signs do not all go in the same place:

    র্ (reph)         before the root:       র্ + ক + া       → র্কা
    ্য, ্র (phalas)   right after the root:  ক + ্র + ি      → ক্রি
    র্য (reph + ্য)   around the root:       র্ + থ + ্য     → র্থ্য
    ঁ (candrabindu)   after the vowel sign:  প + ে + ঁ       → পেঁ
"""

from __future__ import annotations

import heapq
import unicodedata
from collections.abc import Mapping, Sequence

import numpy as np

ROOT_HEAD = "grapheme_root"
VOWEL_HEAD = "vowel_diacritic"
CONSONANT_HEAD = "consonant_diacritic"
HEADS = (ROOT_HEAD, VOWEL_HEAD, CONSONANT_HEAD)

NONE = "0"
RA = "র"
VIRAMA = "্"
REPH = "র্"
CANDRABINDU = "ঁ"
ZWJ = "\u200d"


def compose(root: str, vowel: str, consonant: str) -> str:
    """The NFC Unicode string of root + vowel sign + consonant sign ("0" = none)."""
    vowel = "" if vowel == NONE else vowel
    consonant = "" if consonant == NONE else consonant
    if consonant == CANDRABINDU:
        text = root + vowel + consonant
    elif consonant.startswith(REPH):
        rest = consonant[len(REPH) :]  # "য" of র্য (reph + ya-phala), which follows the root as ্য
        text = REPH + root + (VIRAMA + rest if rest else "") + vowel
    else:
        if root == RA and consonant:
            # র + ্য would shape as reph + য (a different grapheme); ZWJ keeps র with its ya-phala (র‍্যাব).
            root += ZWJ
        text = root + consonant + vowel
    return unicodedata.normalize("NFC", text)


# Roots that are no consonant (independent vowels, ং, ঃ, ৎ) carry no vowel sign and no consonant sign,
# except candrabindu (আঁ, উঁ) and the ya-phala + া spelling of the English "a" sound (অ্যা, এ্যা):
# every grapheme of the Bengali.AI list obeys this (tests/contract/test_graphemes.py).
SIGNS_ON_NON_CONSONANTS = frozenset({(NONE, NONE), (NONE, CANDRABINDU), ("া", "্য")})


def starts_with_consonant(root: str) -> bool:
    first = unicodedata.normalize("NFD", root)[:1]
    return "\u0995" <= first <= "\u09b9" or "\u09dc" <= first <= "\u09df"


def is_valid(root: str, vowel: str, consonant: str) -> bool:
    """Whether a writer can write this triple: a sign needs a consonant (or conjunct) to sit on."""
    return starts_with_consonant(root) or (vowel, consonant) in SIGNS_ON_NON_CONSONANTS


def top_graphemes(
    probabilities: Mapping[str, np.ndarray], labels: Mapping[str, Sequence[str]], k: int
) -> list[tuple[str, float]]:
    """The k most probable whole graphemes, best first; probability = product over the three heads.

    Best-first search over the heads' ranked labels: a triple is only reached after the triples
    that beat it, so about 3k triples are composed instead of all 168·11·7. Triples no writer can
    write (is_valid: e.g. আ + া, whose handwritten shape the vowel head may read as a sign) are
    skipped. Should two triples spell the same string, the more probable one stands.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    ranked: list[list[tuple[str, float]]] = []
    for head in HEADS:
        probs = np.asarray(probabilities[head], dtype=np.float64)
        if probs.shape != (len(labels[head]),):
            raise ValueError(f"head {head!r}: expected {len(labels[head])} probabilities, got {probs.shape}")
        ranked.append([(labels[head][i], float(probs[i])) for i in np.argsort(-probs, kind="stable")])

    def product(ranks: tuple[int, ...]) -> float:
        return float(np.prod([ranked[h][r][1] for h, r in enumerate(ranks)]))

    start: tuple[int, ...] = (0, 0, 0)
    frontier: list[tuple[float, tuple[int, ...]]] = [(-product(start), start)]
    seen = {start}
    found: dict[str, float] = {}
    while frontier and len(found) < k:
        negative, ranks = heapq.heappop(frontier)  # ties: lower ranks first, so deterministic
        triple = [ranked[h][r][0] for h, r in enumerate(ranks)]
        if is_valid(*triple):
            found.setdefault(compose(*triple), -negative)
        for h in range(len(HEADS)):
            after = (*ranks[:h], ranks[h] + 1, *ranks[h + 1 :])
            if after[h] < len(ranked[h]) and after not in seen:
                seen.add(after)
                heapq.heappush(frontier, (-product(after), after))
    return list(found.items())


def grapheme_space(labels: Mapping[str, Sequence[str]]) -> tuple[list[str], np.ndarray]:
    """Every grapheme a writer can write (is_valid), once: its string and the head indices of
    the triple that spells it (root, vowel, consonant; M×3), for scoring whole graphemes against a
    list of words. Should two triples spell the same string, the first in label order stands."""
    strings: dict[str, tuple[int, int, int]] = {}
    roots, vowels, consonants = (labels[head] for head in HEADS)
    for r, root in enumerate(roots):
        for v, vowel in enumerate(vowels):
            for c, consonant in enumerate(consonants):
                if is_valid(root, vowel, consonant):
                    strings.setdefault(compose(root, vowel, consonant), (r, v, c))
    return list(strings), np.asarray(list(strings.values()), dtype=np.int64).reshape(-1, 3)
