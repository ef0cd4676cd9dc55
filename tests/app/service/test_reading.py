"""app.service.reading: the likeliest cuts, the reject flag and the text, on hand-made model answers."""

from __future__ import annotations

import numpy as np
import pytest

from app.service.reading import (
    CUT_PENALTY,
    REJECT_MARK,
    WIDE_FROM,
    WIDE_PENALTY,
    Candidates,
    Character,
    best_spans,
    candidates,
    characters,
    span_score,
    text_of,
)
from app.service.segmentation import Blob, Glyph
from contract.preprocessing import PreprocessConfig

CFG = PreprocessConfig()


def glyph(x: int) -> Glyph:
    ink = np.zeros((40, 40), np.uint8)
    ink[10:30, 18:22] = 255
    return Glyph(box=(x, 0, 4, 20), ink=ink)


def logs(**spans: float) -> dict[tuple[int, int], float]:
    """`logs(s0_2=0.9)` → {(0, 2): log 0.9}."""
    scores = {}
    for name, p in spans.items():
        i, j = name[1:].split("_")
        scores[(int(i), int(j))] = float(np.log(p))
    return scores


def test_a_confident_whole_beats_its_pieces():
    assert best_spans(2, logs(s0_1=0.9, s1_2=0.9, s0_2=0.9)) == [(0, 2)]


def test_an_unsure_whole_is_cut_where_the_pieces_read_well():
    scores = logs(s0_1=0.95, s1_2=0.1, s0_2=0.1, s1_3=0.9, s2_3=0.1, s0_3=0.3)
    assert best_spans(3, scores) == [(0, 1), (1, 3)]


def test_the_cut_penalty_decides_a_close_call():
    # Two pieces at p each beat a whole at 0.64 only if 2 log p - penalty > log 0.64.
    worse = float(np.exp(np.log(0.8) + CUT_PENALTY / 2 - 0.01))
    better = float(np.exp(np.log(0.8) + CUT_PENALTY / 2 + 0.01))
    assert best_spans(2, logs(s0_1=worse, s1_2=worse, s0_2=0.64)) == [(0, 2)]
    assert best_spans(2, logs(s0_1=better, s1_2=better, s0_2=0.64)) == [(0, 1), (1, 2)]


def test_a_piece_far_wider_than_high_must_read_much_better():
    assert span_score(0.9, width=round(100 * WIDE_FROM), height=100) == pytest.approx(np.log(0.9))
    assert span_score(0.9, width=round(100 * WIDE_FROM) + 100, height=100) == pytest.approx(
        np.log(0.9) - WIDE_PENALTY
    )
    # Four touching letters read as one confident "W" are still read as four.
    scores = {(i, i + 1): span_score(0.85, 60, 70) for i in range(4)} | {(0, 4): span_score(0.6, 240, 70)}
    assert best_spans(4, scores) == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_no_chain_of_spans_reads_nothing():
    assert best_spans(2, logs(s0_1=0.9)) == []


def test_low_confidence_is_rejected_not_guessed():
    blobs = [Blob(0, False, 1, {(0, 1): glyph(0)}), Blob(0, False, 1, {(0, 1): glyph(10)})]
    found = Candidates(np.zeros((2, 1, 28, 28), np.float32), [{(0, 1): 0}, {(0, 1): 1}])
    ranked = [[("A", 0.9), ("B", 0.05)], [("C", 0.4), ("D", 0.3)]]
    read = characters(blobs, found, ranked, min_confidence=0.5)
    assert [c.rejected for c in read] == [False, True]
    assert read[1].predictions == ranked[1]  # the answers are still there
    assert text_of(read) == f"A{REJECT_MARK}"
    assert text_of(characters(blobs, found, ranked, min_confidence=0.0)) == "AC"


def test_text_joins_lines_with_newlines_and_word_gaps_with_spaces():
    def char(label: str, line: int, space: bool = False) -> Character:
        return Character((0, 0, 1, 1), line, space, [(label, 0.9)], False)

    read = [char("A", 0), char("B", 0), char("C", 0, space=True), char("D", 1), char("E", 1)]
    assert text_of(read) == "AB C\nDE"


def test_candidates_go_through_the_single_character_preprocessing():
    from contract.preprocessing import preprocess

    blob = Blob(0, False, 1, {(0, 1): glyph(0)})
    found = candidates([blob], CFG)
    assert found.rows == [{(0, 1): 0}]
    np.testing.assert_array_equal(found.inputs[0], preprocess(glyph(0).ink, CFG))
