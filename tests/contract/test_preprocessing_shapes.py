"""The preprocessing on odd shapes: strips, 1-px images, marks at the edges.

Whatever the image's shape, `preprocess` returns the model's input or raises its documented
`NoInkError`; anything else would leave the service as a 500 (and once failed a whole batch).
Driven by hypothesis (`derandomize=True`: the same examples every run).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.preprocessing import NoInkError, PreprocessConfig, find_ink, preprocess

CFG = PreprocessConfig()


def strip_with_mark(height: int, width: int, y: tuple[int, int], x: tuple[int, int]) -> np.ndarray:
    image = np.full((height, width), 255, np.uint8)
    image[y[0] : y[1], x[0] : x[1]] = 0
    return image


def test_a_small_mark_at_the_end_of_a_flat_strip_is_found():
    # The audit's 119-byte PNG: 520×8 paper, a 12×6 mark near the right end. The closer look at
    # the mark scaled x by the vertical ratio (4, not 3.25) and cropped past the right edge: 500.
    image = strip_with_mark(8, 520, (1, 7), (500, 512))
    x = preprocess(image, CFG)
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and np.isfinite(x).all()


def test_the_closer_look_stays_on_the_mark():
    # The mark is found again around itself, not somewhere else along the strip: the cropped ink
    # is as wide as it is high (12×6 at any scale: about 2:1).
    crop = find_ink(strip_with_mark(8, 520, (1, 7), (500, 512)), CFG)
    assert crop.size and 1.5 <= crop.shape[1] / crop.shape[0] <= 2.5


LONG_SIDES = [1, 2, 3, 47, 159, 160, 161, 241, 333, 520, 687, 1023, 1024, 1025, 1500]


def near_an_edge(last: int) -> st.SearchStrategy[int]:
    """A position in [0, last]: often within a few pixels of either end, else anywhere."""
    return st.one_of(
        st.integers(0, min(last, 40)), st.integers(max(0, last - 40), last), st.integers(0, last)
    )


@st.composite
def odd_images(draw: st.DrawFn) -> np.ndarray:
    """Paper of an odd shape (a strip down to 1 px, up to 1500 px long, either way round) with
    one or two rectangular marks anywhere, the edges and corners included."""
    short = draw(st.integers(1, 24))
    # Longer than the 160 px first look, or not: only a downscaled image gets a closer look, and
    # the longer the strip the more its short side rounds off at 160 px (hypothesis alone favours
    # small integers, hence the listed lengths).
    long = draw(st.one_of(st.sampled_from(LONG_SIDES), st.integers(1, 1500)))
    height, width = (short, long) if draw(st.booleans()) else (long, short)
    paper = draw(st.sampled_from([255, 230, 0]))
    ink = draw(st.sampled_from([0, 40, 255]).filter(lambda value: abs(value - paper) > 100))
    image = np.full((height, width), paper, np.uint8)
    for _ in range(draw(st.integers(1, 2))):
        # Small marks too: a mark small at the first look is looked at again, closer.
        mark_h = draw(st.one_of(st.integers(1, min(height, 16)), st.integers(1, height)))
        mark_w = draw(st.one_of(st.integers(1, min(width, 16)), st.integers(1, width)))
        # Biased to the edges: where the crops around a mark get clipped.
        top = draw(near_an_edge(height - mark_h))
        left = draw(near_an_edge(width - mark_w))
        image[top : top + mark_h, left : left + mark_w] = ink
    return image


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(image=odd_images())
def test_any_shape_gives_a_canvas_or_no_ink(image: np.ndarray):
    try:
        x = preprocess(image, CFG)
    except NoInkError:
        return
    assert x.shape == (1, CFG.canvas_size, CFG.canvas_size)
    assert x.dtype == np.float32 and np.isfinite(x).all()


@pytest.mark.parametrize(("height", "width"), [(1, 1), (1, 2), (2, 1), (1, 1500), (1500, 1), (3, 700)])
def test_single_pixel_marks_on_tiny_and_thin_images(height: int, width: int):
    for y, x in {(0, 0), (height - 1, width - 1), (height // 2, width // 2)}:
        image = strip_with_mark(height, width, (y, y + 1), (x, x + 1))
        try:
            out = preprocess(image, CFG)
        except NoInkError:
            continue
        assert out.shape == (1, 28, 28) and np.isfinite(out).all()
