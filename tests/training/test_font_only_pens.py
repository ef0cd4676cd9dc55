"""More pen renders, in more training pen styles, for graphemes whose root only fonts provide."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.training.fake_bengali import (
    BANGLALEKHA_CLASSES,
    ROOTS,
    build_small_task,
    requires_bengali_rendering,
    write_fake_bengali,
)
from training.data.bengali import Grapheme
from training.data.bengali_render import TRAIN_FONTS, find_fonts
from training.data.handwriting_task import HandwritingSpec
from training.data.handwritten_graphemes import TRAIN_RECIPE, pen_renders
from training.data.pen import HELDOUT_PEN, PRESSED_PEN, QUICK_PEN, TRAIN_PEN, TRAIN_PENS


@pytest.mark.parametrize("style", [QUICK_PEN, PRESSED_PEN])
def test_extra_training_pens_lie_away_from_the_held_out_pen(style):
    # The held-out pen is broader, steadier, less slanted, wider, with more open joins and longer
    # overshoots than the training pen: an extra training style must not go that way in any of them.
    assert style.width[1] <= TRAIN_PEN.width[1] < HELDOUT_PEN.width[1]
    assert style.pressure >= TRAIN_PEN.pressure > HELDOUT_PEN.pressure
    assert style.slant >= TRAIN_PEN.slant > HELDOUT_PEN.slant
    assert style.aspect[1] <= TRAIN_PEN.aspect[1] < HELDOUT_PEN.aspect[1]
    assert style.open_joins <= TRAIN_PEN.open_joins < HELDOUT_PEN.open_joins
    assert style.overshoot <= TRAIN_PEN.overshoot < HELDOUT_PEN.overshoot
    assert style.overshoot_length[1] <= TRAIN_PEN.overshoot_length[1] < HELDOUT_PEN.overshoot_length[1]
    assert HELDOUT_PEN not in TRAIN_PENS.values()


def test_spec_takes_pen_names_from_yaml_lists_and_refuses_unknown_ones():
    spec = HandwritingSpec(font_only_pens=["train", "quick"])  # type: ignore[arg-type]
    assert spec.font_only_pens == ("train", "quick")
    assert spec.font_only_per_font == spec.pen_per_font
    assert HandwritingSpec(font_only_pen_per_font=3).font_only_per_font == 3
    with pytest.raises(ValueError, match="heldout"):
        HandwritingSpec(font_only_pens=("train", "heldout"))
    with pytest.raises(ValueError):
        HandwritingSpec(font_only_pens=())


@requires_bengali_rendering
def test_pen_renders_cycle_the_recipe_styles_and_keep_the_first_render():
    fonts = find_fonts()
    plan = [(TRAIN_FONTS[0], [Grapheme("ক্ষ", 0, 0, 0)])]
    plain = pen_renders(plan, fonts, 3, TRAIN_RECIPE, workers=1)
    cycled = pen_renders(plan, fonts, 3, replace(TRAIN_RECIPE, pens=(TRAIN_PEN, QUICK_PEN, PRESSED_PEN)), 1)
    again = pen_renders(plan, fonts, 3, replace(TRAIN_RECIPE, pens=(TRAIN_PEN, QUICK_PEN, PRESSED_PEN)), 1)
    assert len(plain) == len(cycled) == 3
    assert np.array_equal(plain[0][0], cycled[0][0])  # render 0: the training pen, same seed
    for i in (1, 2):  # the others: the same seeds in another style
        assert plain[i][0].shape != cycled[i][0].shape or not np.array_equal(plain[i][0], cycled[i][0])
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(cycled, again, strict=True))  # seeded


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_fake_bengali(tmp_path_factory.mktemp("data"))


@requires_bengali_rendering
def test_font_only_roots_get_more_pen_renders_and_the_validation_is_unchanged(data_dir, tmp_path):
    base = build_small_task(data_dir, tmp_path)
    twice = build_small_task(data_dir, tmp_path, font_only_pen_per_font=2, font_only_pens=("train", "quick"))
    thrice = build_small_task(
        data_dir, tmp_path, font_only_pen_per_font=3, font_only_pens=("train", "quick", "pressed")
    )
    real = [ROOTS.index(c) for c in BANGLALEKHA_CLASSES]

    def per_root(task) -> np.ndarray:
        return np.bincount(task.train.targets["grapheme_root"], minlength=len(ROOTS))

    one, two, three = per_root(base), per_root(twice), per_root(thrice)
    assert (one[real] == two[real]).all() and (one[real] == three[real]).all()  # real roots: as before
    added = two - one
    assert added.sum() > 0 and (three - one == 2 * added).all()  # one more render per font each time
    for a, b in ((base, twice), (base, thrice)):  # the held-out style does not move
        assert np.array_equal(a.val.images, b.val.images)
        assert all(np.array_equal(a.val.targets[h], b.val.targets[h]) for h in a.val.targets)
    notes = {p["name"]: p["notes"] for p in thrice.provenance}["Pen renders of font graphemes"]
    assert "3 for graphemes whose root no real handwriting has" in notes and "pressed" in notes
