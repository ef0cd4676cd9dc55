"""Bengali grapheme composition (root + vowel sign + consonant sign → Unicode) and top-k search."""

from __future__ import annotations

import csv
import itertools
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from contract.graphemes import HEADS, compose, is_valid, top_graphemes

GRAPHEMES_TSV = Path(__file__).parent.parent / "data" / "bengali" / "graphemes.tsv"

# graphemes.tsv's `mod` column names only the first of two consonant signs; the class map has
# one class for each pair (reph + ya-phala, ra-phala + ya-phala).
TWO_SIGN = {"র্": "র্য", "্র": "্র্য"}
# Rows that no class-map triple composes, and why.
EXCEPTIONS = {
    "র্ত্রী": "reph + ra-phala: the class map has no class for the pair",
    "র্ত্রে": "reph + ra-phala: the class map has no class for the pair",
    "র্দ্র": "reph + ra-phala: the class map has no class for the pair",
    "র্যো": "labelled root র + ya-phala, but written without the ZWJ that needs (as written: reph + যো)",
}


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@pytest.fixture(scope="module")
def rows() -> list[list[str]]:
    with GRAPHEMES_TSV.open(encoding="utf-8", newline="") as f:
        return [row for row in list(csv.reader(f, delimiter="\t"))[1:] if row]


def candidates(root: str, vowel: str, consonant: str) -> set[str]:
    found = {compose(root, vowel, consonant)}
    if consonant in TWO_SIGN:
        found.add(compose(root, vowel, TWO_SIGN[consonant]))
    return found


def test_every_grapheme_of_the_list_composes_from_its_components(rows):
    assert len(rows) == 1296
    wrong = [
        (text, root, vowel, consonant)
        for text, root, vowel, consonant in rows
        if nfc(text) not in EXCEPTIONS and nfc(text) not in candidates(root, vowel, consonant)
    ]
    assert wrong == []
    two_sign = [r for r in rows if compose(*r[1:]) != nfc(r[0]) and nfc(r[0]) not in EXCEPTIONS]
    assert len(two_sign) == 13  # 4 × reph + ya-phala, 9 × ra-phala + ya-phala


def test_the_exceptions_are_real(rows):
    listed = {nfc(text): (root, vowel, consonant) for text, root, vowel, consonant in rows}
    for text in EXCEPTIONS:
        assert text not in candidates(*listed[text]), text


@pytest.mark.parametrize(
    ("root", "vowel", "consonant", "grapheme"),
    [
        ("ক", "0", "0", "ক"),
        ("ক্ষ", "0", "0", "ক্ষ"),
        ("ক", "ি", "0", "কি"),  # ি is drawn first but stored after its consonant
        ("ক", "ো", "0", "কো"),
        ("ক", "0", "র্", "র্ক"),  # reph before the root
        ("ক", "া", "র্", "র্কা"),
        ("ক", "ি", "্য", "ক্যি"),  # phala right after the root, vowel sign after it
        ("ক", "ো", "্র", "ক্রো"),
        ("থ", "0", "র্য", "র্থ্য"),  # reph before, ya-phala after
        ("দ", "0", "্র্য", "দ্র্য"),
        ("প", "ে", "ঁ", "পেঁ"),  # candrabindu after the vowel sign
        ("য", "া", "র্", "র্যা"),  # reph + যা …
        ("র", "া", "্য", "র\u200d্যা"),  # … is not র + ya-phala: that needs ZWJ (র‍্যাব)
        ("\u09df", "0", "0", "য\u09bc"),  # precomposed য় comes out NFC
    ],
)
def test_known_triples(root, vowel, consonant, grapheme):
    assert compose(root, vowel, consonant) == grapheme


LABELS = {
    "grapheme_root": ["ক", "খ", "গ", "র", "য"],
    "vowel_diacritic": ["0", "া", "ি", "ে"],
    "consonant_diacritic": ["0", "ঁ", "র্", "্য"],
}


def brute_force(probabilities: dict[str, np.ndarray], k: int) -> list[tuple[str, float]]:
    triples = itertools.product(*(enumerate(LABELS[h]) for h in HEADS))
    scored = [
        (
            compose(r, v, c),
            probabilities[HEADS[0]][i] * probabilities[HEADS[1]][j] * probabilities[HEADS[2]][m],
        )
        for (i, r), (j, v), (m, c) in triples
    ]
    return sorted(scored, key=lambda item: -item[1])[:k]


@pytest.mark.parametrize("seed", range(5))
def test_top_graphemes_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    probabilities = {h: rng.dirichlet(np.full(len(LABELS[h]), 0.5)) for h in HEADS}
    expected = brute_force(probabilities, 10)
    found = top_graphemes(probabilities, LABELS, 10)
    assert [text for text, _ in found] == [text for text, _ in expected]
    np.testing.assert_allclose([p for _, p in found], [p for _, p in expected])


def test_top_graphemes_best_is_the_product_of_each_heads_best():
    probabilities = {
        "grapheme_root": np.array([0.1, 0.7, 0.1, 0.05, 0.05]),
        "vowel_diacritic": np.array([0.2, 0.1, 0.6, 0.1]),
        "consonant_diacritic": np.array([0.1, 0.1, 0.5, 0.3]),
    }
    best, second = top_graphemes(probabilities, LABELS, 2)
    assert best == ("র্খি", pytest.approx(0.7 * 0.6 * 0.5))
    assert second == ("খ্যি", pytest.approx(0.7 * 0.6 * 0.3))


def test_top_graphemes_k_beyond_all_combinations_returns_them_all():
    probabilities = {h: np.full(len(LABELS[h]), 1 / len(LABELS[h])) for h in HEADS}
    found = top_graphemes(probabilities, LABELS, 1000)
    assert len(found) == 5 * 4 * 4
    assert sum(p for _, p in found) == pytest.approx(1.0)
    assert found == top_graphemes(probabilities, LABELS, 1000)  # ties: deterministic


def test_top_graphemes_rejects_bad_input():
    probabilities = {h: np.full(len(LABELS[h]), 1 / len(LABELS[h])) for h in HEADS}
    with pytest.raises(ValueError, match="k must be"):
        top_graphemes(probabilities, LABELS, 0)
    with pytest.raises(ValueError, match="vowel_diacritic"):
        top_graphemes({**probabilities, "vowel_diacritic": np.ones(3) / 3}, LABELS, 3)


def test_every_grapheme_of_the_list_is_valid(rows):
    assert all(is_valid(root, vowel, consonant) for _, root, vowel, consonant in rows)
    assert not is_valid("আ", "া", "0") and not is_valid("ং", "ি", "0") and not is_valid("অ", "0", "র্")
    assert is_valid("আ", "0", "ঁ") and is_valid("অ", "া", "্য") and is_valid("হ", "ু", "0")


def test_top_graphemes_skips_triples_no_writer_can_write():
    """A handwritten আ looks like অ + া: a vowel sign there is impossible, whatever the vowel head says."""
    labels = {"grapheme_root": ["আ", "ক"], "vowel_diacritic": ["0", "া"], "consonant_diacritic": ["0", "ঁ"]}
    probabilities = {
        "grapheme_root": np.array([0.9, 0.1]),
        "vowel_diacritic": np.array([0.2, 0.8]),
        "consonant_diacritic": np.array([0.7, 0.3]),
    }
    found = top_graphemes(probabilities, labels, 3)
    assert [text for text, _ in found] == ["আ", "কা", "আঁ"]
    assert found[0][1] == pytest.approx(0.9 * 0.2 * 0.7)
