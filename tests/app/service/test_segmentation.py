"""app.service.segmentation: characters in reading order, dots joined, specks dropped, touching pairs cut."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.service.segmentation import Blob, SegmentConfig, TooManyParts, cut_candidates, segment
from contract.preprocessing import NoInkError, PreprocessConfig

CFG = PreprocessConfig()
INK, PAPER = 25, 235


def page(height: int = 240, width: int = 640) -> np.ndarray:
    return np.full((height, width), PAPER, np.uint8)


def text(image: np.ndarray, chars: str, x: int, baseline: int, scale: float = 3.0) -> np.ndarray:
    cv2.putText(image, chars, (x, baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, INK, 7, cv2.LINE_AA)
    return image


def bar(image: np.ndarray, x: int, top: int, bottom: int, width: int = 8) -> np.ndarray:
    image[top:bottom, x : x + width] = INK
    return image


def dot(image: np.ndarray, x: int, y: int, radius: int = 6) -> np.ndarray:
    cv2.circle(image, (x, y), radius, INK, -1, cv2.LINE_AA)
    return image


def ring(image: np.ndarray, x: int, y: int, radius: int = 30) -> np.ndarray:
    cv2.circle(image, (x, y), radius, INK, 7, cv2.LINE_AA)
    return image


def lefts(blobs: list[Blob]) -> list[int]:
    return [b.whole.box[0] for b in blobs]


def test_separate_characters_come_out_left_to_right_with_their_boxes():
    blobs = segment(text(page(), "HL", 100, 150), CFG)
    assert len(blobs) == 2
    assert lefts(blobs) == sorted(lefts(blobs))
    for blob in blobs:
        x, y, w, h = blob.whole.box
        assert 90 <= x <= 300 and 50 <= y <= 110 and 40 <= w <= 110 and 60 <= h <= 100
        assert blob.line == 0 and not blob.space_before
        # An ink-high image: ink 255 on a 0 margin, like a training scan.
        ink = blob.whole.ink
        assert ink.dtype == np.uint8 and ink.max() == 255 and ink[0].max() == 0 and ink[:, 0].max() == 0


def test_an_i_dot_and_a_j_dot_join_their_stems():
    image = page()
    bar(dot(image, 104, 70), 100, 95, 170)  # i
    bar(dot(image, 204, 70), 200, 95, 190)  # j (a bar is enough: the dot is what matters)
    blobs = segment(image, CFG)
    assert len(blobs) == 2
    for blob, stem_x in zip(blobs, (100, 200), strict=True):
        x, y, _, _ = blob.whole.box
        assert abs(x - stem_x) <= 3 and y <= 65  # the box reaches up to the dot
        assert blob.pieces == 1  # narrow: never cut


def test_a_broken_stroke_and_a_detached_bar_stay_one_character():
    image = page()
    bar(image, 100, 60, 110)
    bar(image, 100, 116, 170)  # one stroke with a gap
    image[60:68, 180:240] = INK  # a T whose bar does not touch its stem
    bar(image, 206, 73, 170)
    blobs = segment(image, CFG)
    assert len(blobs) == 2
    assert blobs[0].whole.box[1] <= 61 and blobs[0].whole.box[3] >= 108
    assert blobs[1].whole.box[2] >= 58


def test_noise_specks_are_ignored():
    clean = segment(text(page(), "AB", 100, 150), CFG)
    noisy = text(page(), "AB", 100, 150)
    rng = np.random.default_rng(0)
    for x, y in zip(rng.integers(20, 620, 40), rng.integers(5, 60, 40), strict=True):
        noisy[y : y + 2, x : x + 2] = INK  # far from the letters: above them
    blobs = segment(noisy, CFG)
    assert [b.whole.box for b in blobs] == [b.whole.box for b in clean]


def test_touching_characters_get_a_cut_where_they_join():
    image = page()
    ring(image, 200, 120)
    ring(image, 280, 120)
    image[116:124, 228:254] = INK  # two O's joined by a pen stroke (a ligature)
    [blob] = segment(image, CFG)
    assert blob.pieces >= 2
    # Some span ends in the ligature and the next one starts there: the pair can be read apart.
    ends = {blob.spans[s].box[0] + blob.spans[s].box[2] for s in blob.spans if s[0] == 0}
    starts = {blob.spans[s].box[0] for s in blob.spans if s[1] == blob.pieces}
    assert any(228 <= x <= 254 for x in ends) and any(228 <= x <= 254 for x in starts)


def test_lines_top_to_bottom_each_left_to_right():
    image = page(420)
    text(image, "AB", 100, 150)
    text(image, "CD", 80, 330)
    blobs = segment(image, CFG)
    assert [b.line for b in blobs] == [0, 0, 1, 1]
    assert lefts(blobs[:2]) == sorted(lefts(blobs[:2])) and lefts(blobs[2:]) == sorted(lefts(blobs[2:]))


def test_a_word_gap_is_a_space():
    blobs = segment(text(text(page(width=900), "AB", 60, 150), "CD", 480, 150), CFG)
    assert [b.space_before for b in blobs] == [False, False, True, False]


def test_boxes_are_in_the_uploaded_images_pixels():
    # Wider than max_side: segmented downscaled, reported at full size.
    small = segment(text(page(), "HL", 100, 150), CFG)
    big = segment(cv2.resize(text(page(), "HL", 100, 150), None, fx=3, fy=3), CFG)
    for a, b in zip(small, big, strict=True):
        np.testing.assert_allclose(np.array(b.whole.box), 3 * np.array(a.whole.box), atol=8)


def test_polarity_does_not_matter():
    image = text(page(), "HL", 100, 150)
    assert [b.whole.box for b in segment(255 - image, CFG)] == [b.whole.box for b in segment(image, CFG)]


def test_an_empty_image_has_no_ink():
    with pytest.raises(NoInkError):
        segment(page(), CFG)


def test_too_many_marks_are_refused():
    image = page(400, 640)
    for row in range(8):
        for col in range(20):
            bar(image, 10 + 31 * col, 10 + 48 * row, 40 + 48 * row, width=5)
    with pytest.raises(TooManyParts):
        segment(image, CFG, SegmentConfig(max_parts=100))


def test_cut_candidates_are_the_thinnest_columns():
    projection = np.array([9, 9, 9, 1, 9, 9, 9, 9, 3, 9, 9, 9, 9, 0, 9, 9], float)
    assert cut_candidates(projection, min_piece=2, most=2) == [3, 13]
    assert cut_candidates(projection, min_piece=2, most=1) == [13]
    assert cut_candidates(projection, min_piece=4, most=5) == [4, 8, 12]  # (smoothed minima, ends kept clear)
    assert cut_candidates(projection[:3], min_piece=2, most=2) == []


def test_small_letters_beside_a_tall_one_stay_on_its_line():
    # "out" as written: o and u sit low on the baseline, t rises far above them; their centres
    # differ by more than the line gap, yet their ink shares the rows of one line.
    image = page()
    ring(image, 120, 180, 20)  # o
    ring(image, 190, 180, 20)  # u (a ring is enough: its place is what matters)
    bar(image, 250, 60, 200)  # t
    blobs = segment(image, CFG)
    assert len(blobs) == 3
    assert [b.line for b in blobs] == [0, 0, 0]
    assert lefts(blobs) == sorted(lefts(blobs))
