"""Handwriting-like graphemes: the simulated pen, signs cut from fonts onto real roots, the task."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.training.fake_bengali import (
    BANGLALEKHA_CLASSES,
    BANGLALEKHA_WRITERS,
    ROOTS,
    build_small_task,
    requires_bengali_rendering,
    write_fake_bengali,
)
from training.data.bengali_render import find_fonts
from training.data.handwritten_graphemes import RealRoots, load_banglalekha, on_square, split_by_writer
from training.data.pen import HELDOUT_PEN, TRAIN_PEN, redraw, skeleton_points
from training.data.tasks import load_task


def cross(size: int = 64) -> np.ndarray:
    ink = np.zeros((size, size), np.float32)
    cv2.line(ink, (10, size // 2), (size - 10, size // 2), 1.0, 5)
    cv2.line(ink, (size // 2, 10), (size // 2, size - 10), 1.0, 5)
    return ink


def test_skeleton_of_a_cross_has_four_ends_and_a_join_in_the_middle():
    points, joins, ends = skeleton_points(cross())
    assert len(points) > 60
    assert len(ends) == 4
    assert len(joins) and np.abs(joins.mean(axis=0) - 32).max() < 3


def test_redraw_is_seeded_and_varies_with_the_seed():
    first = redraw(cross(), np.random.default_rng(1))
    again = redraw(cross(), np.random.default_rng(1))
    other = redraw(cross(), np.random.default_rng(2))
    assert np.array_equal(first, again)
    assert first.shape != other.shape or not np.array_equal(first, other)
    assert first.dtype == np.float32 and first.min() >= 0.0 and first.max() <= 1.0
    assert (first > 0.5).sum() > 100  # the strokes are there


def test_held_out_pen_is_another_way_of_writing():
    assert TRAIN_PEN != HELDOUT_PEN
    # mean stroke width: the held-out pen's range starts where most of training's lies above
    assert HELDOUT_PEN.width[0] > sum(TRAIN_PEN.width) / 2


def test_redraw_refuses_a_blank_image():
    with pytest.raises(ValueError, match="skeleton"):
        redraw(np.zeros((32, 32), np.float32), np.random.default_rng(0))


def test_split_by_writer_holds_out_whole_writers_fixed_by_its_own_seed():
    roots = RealRoots(np.zeros((200, 4, 4), np.uint8), np.arange(200) % 5, np.arange(200) // 4)
    train, held = split_by_writer(roots, fraction=0.1)
    assert not set(train.writers) & set(held.writers)
    assert len(np.unique(held.writers)) == 5  # 10 % of 50 writers
    again, _ = split_by_writer(roots, fraction=0.1)
    assert np.array_equal(train.writers, again.writers)


def test_on_square_keeps_small_images_and_shrinks_large_ones():
    small = np.full((20, 40), 200, np.uint8)
    out = on_square(small, 96)
    assert out.shape == (96, 96) and (out == 200).all()
    large = np.zeros((300, 150), np.uint8)
    assert on_square(large, 96).shape == (96, 96)


@requires_bengali_rendering
def test_signs_are_cut_out_where_the_font_places_them():
    from training.data.sign_composition import extract_signs

    font = find_fonts()["Lohit-Bengali.ttf"]

    def sign_centre(text: str) -> tuple[float, float, tuple[int, int, int, int]]:
        sprite = extract_signs(text, "ক", font)
        assert sprite is not None, text
        ys, xs = np.nonzero(sprite.ink > 0.5)
        return xs.mean(), ys.mean(), sprite.root_box

    x, _, (x0, _, x1, _) = sign_centre("কা")
    assert x > x1 - 2  # া: right of the root
    x, _, (x0, _, x1, _) = sign_centre("কি")
    assert x < (x0 + x1) / 2  # ি: its stem stands left of the root
    _, y, (_, y0, _, y1) = sign_centre("কু")
    assert y > (y0 + y1) / 2  # ু: below


@requires_bengali_rendering
def test_composition_keeps_the_real_root_and_adds_the_signs():
    from training.data.sign_composition import compose, extract_signs

    sprite = extract_signs("কা", "ক", find_fonts()["Lohit-Bengali.ttf"])
    assert sprite is not None
    root = cross(48)
    out = compose(root, sprite, np.random.default_rng(3))
    again = compose(root, sprite, np.random.default_rng(3))
    assert np.array_equal(out, again)
    assert (out > 0.5).sum() > (root > 0.5).sum() * 1.1  # the sign's strokes were added
    # the root is drawn unchanged at the canvas origin side: all of its ink is still ink
    h, w = root.shape
    assert any(
        (out[y : y + h, x : x + w][root > 0.5] > 0.5).all()
        for y in range(out.shape[0] - h + 1)
        for x in range(out.shape[1] - w + 1)
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_fake_bengali(tmp_path_factory.mktemp("data"))


def test_fake_banglalekha_loads(data_dir):
    roots = load_banglalekha(data_dir)
    assert len(roots.images) == BANGLALEKHA_WRITERS * len(BANGLALEKHA_CLASSES)
    assert set(roots.roots) == {ROOTS.index(c) for c in BANGLALEKHA_CLASSES}


@pytest.fixture(scope="module")
def task(data_dir, tmp_path_factory):
    return build_small_task(data_dir, tmp_path_factory.mktemp("cache"), compose_per_grapheme=2)


@requires_bengali_rendering
def test_training_data_mixes_real_roots_compositions_and_renders(task):
    names = {p["name"]: p["samples"] for p in task.provenance if p["split"] == "train"}
    assert names["BanglaLekha-Isolated (training writers)"] > 0
    assert names["Compositions: real roots + font-placed signs"] > 0
    assert names["Pen renders of font graphemes"] > 0
    assert sum(names.values()) == len(task.train)
    vowel = task.train.targets["vowel_diacritic"]
    consonant = task.train.targets["consonant_diacritic"]
    assert ((vowel > 0) | (consonant > 0)).any() and ((vowel == 0) & (consonant == 0)).any()
    assert (vowel >= 0).all()  # real roots are labelled "no sign", never IGNORE


@requires_bengali_rendering
def test_held_out_validation_has_signs_and_tests_measure_real_writers(task):
    assert (
        len(task.val)
        and (task.val.targets["vowel_diacritic"] + task.val.targets["consonant_diacritic"] > 0).any()
    )
    assert set(task.tests) == {"banglalekha_heldout_writers", "cmaterdb_test", "heldout_fonts"}
    held = task.tests["banglalekha_heldout_writers"]
    assert len(held) == len(BANGLALEKHA_CLASSES)  # 10 % of 10 writers: one writer, one of each class


@requires_bengali_rendering
def test_evaluation_only_builds_no_training_data(data_dir, tmp_path):
    data = load_task(
        "grapheme",
        data_dir,
        0.1,
        0,
        evaluation_only=True,
        handwriting={"compose_per_grapheme": 1, "heldout_compose_per_grapheme": 1},
    )
    assert len(data.train) == 0 and len(data.val) and data.tests


@requires_bengali_rendering
def test_cmaterdb_can_be_left_out_of_training(data_dir, tmp_path):
    task = build_small_task(data_dir, tmp_path, compose_per_grapheme=2, cmaterdb=False)
    counts = {p["name"]: p["samples"] for p in task.provenance if p["split"] == "train"}
    assert counts["CMATERdb 3.1.2 basic characters"] == 0 and len(task.train) == sum(counts.values())
