"""The grapheme task, built smoke-size: renders of a few graphemes + fake CMATERdb."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from contract.preprocessing import PreprocessConfig, render_canvas
from tests.training.fake_bengali import (
    CONSONANTS,
    ROOTS,
    SAMPLES_PER_CLASS,
    VOWELS,
    requires_bengali_rendering,
    write_fake_bengali,
)
from training.data.bengali import load_class_map, load_graphemes, sign_combinations
from training.data.bengali_render import TRAIN_FONTS, VALIDATION_FONTS, covers, find_fonts
from training.data.graphemes import build_grapheme_task, grapheme_test_splits
from training.data.tasks import load_task
from training.losses import IGNORE

GRAPHEMES = 11  # unique rows of the fake graphemes.tsv
CMATERDB_ROOT_CLASSES = 3  # of 4: ঁ has no root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_fake_bengali(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def task(data_dir, cache_dir):
    return build_grapheme_task(data_dir, seed=0, variants=2, cache_dir=cache_dir, workers=1)


def test_test_split_scores_basic_characters_as_root_without_signs(data_dir):
    (name, split), *others = grapheme_test_splits(data_dir).items()
    assert name == "cmaterdb_test" and not others
    assert len(split) == CMATERDB_ROOT_CLASSES * SAMPLES_PER_CLASS["test"]
    assert (split.targets["grapheme_root"] >= 0).all()
    assert (split.targets["vowel_diacritic"] == VOWELS.index("0")).all()
    assert (split.targets["consonant_diacritic"] == CONSONANTS.index("0")).all()


@requires_bengali_rendering
def test_three_heads_with_the_class_maps_sizes(task):
    assert {h: len(labels) for h, labels in task.heads.items()} == {
        "grapheme_root": len(ROOTS),
        "vowel_diacritic": len(VOWELS),
        "consonant_diacritic": len(CONSONANTS),
    }
    assert task.composition == "bengali_grapheme"


def renderable(data_dir: Path, fonts: tuple[str, ...]) -> int:
    """(font, grapheme) pairs with every glyph: a font lacking one (Likhan has no ৎ) skips it."""
    bengali = data_dir / "bengali"
    listed = load_graphemes(bengali / "graphemes.tsv", load_class_map(bengali / "class_map.csv"))
    assert len(listed.graphemes) == GRAPHEMES
    paths = find_fonts()
    return sum(covers(paths[f], g.text) for f in fonts for g in listed.graphemes)


@requires_bengali_rendering
def test_splits_sizes_and_targets(task, data_dir):
    synthetic = renderable(data_dir, TRAIN_FONTS) * 2
    real = CMATERDB_ROOT_CLASSES * SAMPLES_PER_CLASS["train"]
    assert len(task.train) == synthetic + real
    assert len(task.val) == renderable(data_dir, VALIDATION_FONTS)
    assert task.train.images.dtype == np.uint8 and task.train.images.shape[1] == task.train.images.shape[2]
    for split in (task.train, task.val):
        for head, labels in task.heads.items():
            target = split.targets[head]
            assert target.shape == (len(split),) and target.max() < len(labels)
    # CMATERdb samples know their root only; renders know every head.
    unknown = task.train.targets["vowel_diacritic"] == IGNORE
    assert unknown.sum() == real
    assert (task.train.targets["consonant_diacritic"][unknown] == IGNORE).all()
    assert (task.train.targets["grapheme_root"] >= 0).all()
    assert (task.val.targets["vowel_diacritic"] >= 0).all()
    assert set(task.tests) == {"cmaterdb_test"}
    assert [p["split"] for p in task.provenance] == ["train", "train", "validation", "test (cmaterdb_test)"]


@requires_bengali_rendering
def test_every_image_survives_preprocessing(task):
    cfg = PreprocessConfig()
    for images in (task.train.images, task.val.images):
        for image in images:
            assert render_canvas(image, cfg).max() > 0.5


@requires_bengali_rendering
def test_rebuild_comes_from_the_cache_and_is_identical(task, data_dir, cache_dir):
    assert len(list(cache_dir.glob("graphemes-*.npy"))) == 2  # train and validation renders
    again = build_grapheme_task(data_dir, seed=0, variants=2, cache_dir=cache_dir, workers=1)
    uncached = build_grapheme_task(data_dir, seed=0, variants=2, use_cache=False, workers=1)
    np.testing.assert_array_equal(again.train.images, task.train.images)
    np.testing.assert_array_equal(uncached.train.images, task.train.images)
    other_seed = build_grapheme_task(data_dir, seed=1, variants=2, use_cache=False, workers=1)
    assert not np.array_equal(other_seed.val.images, task.val.images)


@requires_bengali_rendering
def test_registered_as_a_task(data_dir, cache_dir, monkeypatch):
    monkeypatch.setenv("HWR_CACHE_DIR", str(cache_dir))
    task = load_task("grapheme", data_dir, val_fraction=0.15, seed=0)
    assert list(task.heads) == ["grapheme_root", "vowel_diacritic", "consonant_diacritic"]


@requires_bengali_rendering
def test_task_options_repeat_the_real_samples(task, data_dir, cache_dir, monkeypatch):
    """TrainConfig.task_kwargs reach the builder: real_repeats=3 triples the CMATERdb part."""
    monkeypatch.setenv("HWR_CACHE_DIR", str(cache_dir))
    repeated = load_task("grapheme", data_dir, val_fraction=0.15, seed=0, variants=2, real_repeats=3)
    real = CMATERDB_ROOT_CLASSES * SAMPLES_PER_CLASS["train"]
    assert len(repeated.train) == len(task.train) + 2 * real
    assert (repeated.train.targets["vowel_diacritic"] == IGNORE).sum() == 3 * real
    np.testing.assert_array_equal(repeated.val.images, task.val.images)


@requires_bengali_rendering
def test_sign_combinations_join_training_only(task, data_dir, cache_dir):
    combined = build_grapheme_task(
        data_dir, seed=0, variants=2, cache_dir=cache_dir, workers=1, combination_variants=1
    )
    bengali = data_dir / "bengali"
    class_map = load_class_map(bengali / "class_map.csv")
    combinations = sign_combinations(
        class_map, load_graphemes(bengali / "graphemes.tsv", class_map).graphemes
    )
    paths = find_fonts()
    renderable = sum(covers(paths[f], g.text) for f in TRAIN_FONTS for g in combinations)
    assert len(combined.train) == len(task.train) + renderable
    np.testing.assert_array_equal(combined.val.images, task.val.images)
