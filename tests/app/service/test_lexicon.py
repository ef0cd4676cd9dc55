"""Lexicon-constrained reading: the cuttings and the labels chosen together for a list's word."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from app.service.lexicon import BlobSpans, Lexicon, english_words, tokenise, word_cuttings
from contract.manifest import Manifest
from contract.postprocessing import answer_log_probabilities, compose_top_k, head_probabilities

REPO = Path(__file__).resolve().parents[3]

LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
CUT = 0.4


def log_probs(rows: list[dict[str, float]]) -> np.ndarray:
    """One row per piece: the given labels' probabilities, the rest spread evenly."""
    out = np.empty((len(rows), len(LETTERS)))
    for r, given in enumerate(rows):
        rest = (1.0 - sum(given.values())) / (len(LETTERS) - len(given))
        out[r] = [given.get(label, rest) for label in LETTERS]
    return np.log(out)


def single(row: int) -> BlobSpans:
    return BlobSpans(pieces=1, spans={(0, 1): (row, 0.0)})


def test_tokenise_by_longest_label() -> None:
    index = {"ক": 0, "ক্ষ": 1, "া": 2}
    assert tokenise("ক্ষা", index, longest=3) == [1, 2]
    assert tokenise("কx", index, longest=3) is None


def test_upper_case_labels_match_words_as_written() -> None:
    lexicon = Lexicon(["cat", "Dog", "it's"], LETTERS)
    assert len(lexicon) == 2 and lexicon.skipped == 1  # the apostrophe is no label
    probs = log_probs([{"D": 0.9}, {"O": 0.9}, {"G": 0.9}])
    match = lexicon.match(word_cuttings([single(0), single(1), single(2)], probs, CUT), probs)
    assert match is not None and match.word == "Dog"


def test_the_lexicon_overrides_a_confused_letter() -> None:
    # The middle letter reads O more than A; only CAT is a word.
    probs = log_probs([{"C": 0.9}, {"O": 0.6, "A": 0.3}, {"T": 0.9}])
    match = Lexicon(["cat", "dog"], LETTERS).match(
        word_cuttings([single(0), single(1), single(2)], probs, CUT), probs
    )
    assert match is not None
    assert match.word == "cat" and match.probability > 0.9
    assert [w for w, _ in match.alternatives] == ["dog"]


def test_the_lexicon_chooses_the_cut_that_spells_its_word() -> None:
    # One blob that reads M whole and R, N when cut: the free reading keeps M (no cut penalty);
    # a lexicon without "am" must take the cut, one with it keeps the whole.
    probs = log_probs([{"A": 0.95}, {"M": 0.7}, {"R": 0.6}, {"N": 0.6}])
    touching = BlobSpans(pieces=2, spans={(0, 2): (1, 0.0), (0, 1): (2, 0.0), (1, 2): (3, 0.0)})
    cuttings = word_cuttings([single(0), touching], probs, CUT)
    assert sorted(len(c.rows) for c in cuttings) == [2, 3]
    match = Lexicon(["arn", "zz"], LETTERS).match(cuttings, probs)
    assert match is not None and match.word == "arn"
    match = Lexicon(["arn", "am"], LETTERS).match(cuttings, probs)
    assert match is not None and match.word == "am"
    assert match.alternatives[0][0] == "arn"


def test_no_word_of_a_fitting_length() -> None:
    probs = log_probs([{"A": 0.9}])
    assert Lexicon(["cat"], LETTERS).match(word_cuttings([single(0)], probs, CUT), probs) is None


def test_probabilities_are_a_distribution() -> None:
    probs = log_probs([{"C": 0.5, "B": 0.4}, {"A": 0.9}, {"T": 0.9}])
    match = Lexicon(["cat", "bat", "hat"], LETTERS).match(
        word_cuttings([single(0), single(1), single(2)], probs, CUT), probs
    )
    assert match is not None and match.word == "cat"
    total = match.probability + sum(p for _, p in match.alternatives)
    assert total == pytest.approx(1.0, abs=1e-9)


def test_the_prior_breaks_a_tie_toward_the_frequent_word() -> None:
    probs = log_probs([{"C": 0.45, "B": 0.45}, {"A": 0.9}, {"T": 0.9}])
    cuttings = word_cuttings([single(0), single(1), single(2)], probs, CUT)
    priors = {"cat": math.log(0.01), "bat": math.log(0.001)}
    match = Lexicon(["bat", "cat"], LETTERS, priors, prior_weight=0.5).match(cuttings, probs)
    assert match is not None and match.word == "cat"


def test_the_built_in_english_words() -> None:
    words = english_words()
    assert len(words) > 20_000
    assert all(w.isascii() and w.isalpha() for w in words)
    assert words["the"] > words["horse"] > words["pneumatic"]


def test_whole_grapheme_log_probabilities_agree_with_the_composed_top_k() -> None:
    manifest = Manifest.model_validate_json((REPO / "models" / "graphemes" / "manifest.json").read_text())
    rng = np.random.default_rng(3)
    logits = {head.name: 3 * rng.normal(size=(2, len(head.labels))) for head in manifest.heads}
    labels, log_p = answer_log_probabilities(logits, manifest.heads, manifest.composition)
    assert log_p.shape == (2, len(labels)) and len(set(labels)) == len(labels)
    top = compose_top_k(
        manifest.composition, head_probabilities(logits, manifest.heads, 1), manifest.heads, 5
    )
    best = np.argsort(-log_p[1])[:5]
    assert [labels[i] for i in best] == [label for label, _ in top]
    assert np.exp(log_p[1, best]) == pytest.approx([p for _, p in top])


def test_a_bengali_word_is_read_through_whole_graphemes() -> None:
    manifest = Manifest.model_validate_json((REPO / "models" / "graphemes" / "manifest.json").read_text())
    labels, _ = answer_log_probabilities(
        {h.name: np.zeros((1, len(h.labels))) for h in manifest.heads}, manifest.heads, manifest.composition
    )
    index = {label: i for i, label in enumerate(labels)}
    # কলকাতা: ক ল কা তা, the third grapheme written unclearly (কা and কি alike).
    log_p = np.full((4, len(labels)), np.log(1e-6))
    for row, options in enumerate([{"ক": 0.9}, {"ল": 0.9}, {"কি": 0.5, "কা": 0.4}, {"তা": 0.9}]):
        for label, p in options.items():
            log_p[row, index[label]] = np.log(p)
    cuttings = word_cuttings([single(i) for i in range(4)], log_p, CUT)
    match = Lexicon(["কলকাতা", "কলম"], labels).match(cuttings, log_p)
    assert match is not None and match.word == "কলকাতা"
