"""Bengali label space and real-data loaders, on a tiny data directory written by the test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from contract.graphemes import compose
from tests.training.fake_bengali import CONSONANTS, ROOTS, VOWELS, write_fake_bengali
from training.data.bengali import load_class_map, load_cmaterdb_basic, load_graphemes, sign_combinations


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_fake_bengali(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def class_map(data_dir):
    return load_class_map(data_dir / "bengali" / "class_map.csv")


def test_class_map_keeps_the_files_ids_and_normalises_to_nfc(class_map):
    assert list(class_map.heads()) == ["grapheme_root", "vowel_diacritic", "consonant_diacritic"]
    assert (len(class_map.roots), len(class_map.vowels), len(class_map.consonants)) == (
        len(ROOTS),
        len(VOWELS),
        len(CONSONANTS),
    )
    assert class_map.vowels == VOWELS and class_map.consonants == CONSONANTS
    assert class_map.roots[ROOTS.index("\u09df")] == "য\u09bc"  # precomposed য় → NFC


def test_class_map_rejects_gaps_in_the_ids(tmp_path):
    path = tmp_path / "class_map.csv"
    path.write_text(
        "component_type,label,component\ngrapheme_root,0,ক\ngrapheme_root,2,খ\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match="ids"):
        load_class_map(path)


def test_graphemes_are_labelled_so_they_compose_back(data_dir, class_map):
    listed = load_graphemes(data_dir / "bengali" / "graphemes.tsv", class_map)
    texts = [g.text for g in listed.graphemes]
    assert len(texts) == len(set(texts)) == 11  # the two spellings of য়ে count once
    by_text = {g.text: g for g in listed.graphemes}
    assert class_map.consonants[by_text["র্থ্য"].consonant] == "র্য"
    assert class_map.consonants[by_text["প্র্যা"].consonant] == "্র্য"
    assert set(listed.relabelled) == {"র্থ্য", "প্র্যা"}
    # The row written without its ZWJ is rendered with it, so pixels match labels (root র + ya-phala).
    assert "র\u200d্যো" in by_text and "র্যো" in listed.exceptions
    # Reph + ra-phala has no class: rendered as written, with the tsv's labels.
    assert "র্ত্রী" in by_text and "র্ত্রী" in listed.exceptions
    for g in listed.graphemes:
        labels = class_map.roots[g.root], class_map.vowels[g.vowel], class_map.consonants[g.consonant]
        assert compose(*labels) == g.text or g.text == "র্ত্রী"


def test_cmaterdb_classes_map_to_roots_and_signs_are_dropped(data_dir, class_map):
    samples = load_cmaterdb_basic(data_dir, "train", class_map)
    assert samples.unmapped == ("ঁ",)
    assert len(samples.images) == len(samples.roots) == 3 * 6
    assert samples.images.shape[1:] == (32, 32) and samples.images.dtype == np.uint8
    names = {class_map.roots[r] for r in samples.roots}
    assert names == {"ক", "খ", "য\u09bc"}


def test_sign_combinations_add_each_single_sign_to_every_consonant_root(data_dir, class_map):
    listed = load_graphemes(data_dir / "bengali" / "graphemes.tsv", class_map).graphemes
    combinations = sign_combinations(class_map, listed)
    texts = {g.text for g in combinations}
    assert not texts & {g.text for g in listed}
    assert all((g.vowel == 0) != (g.consonant == 0) for g in combinations)  # exactly one sign
    assert all(
        g.text == compose(ROOTS[g.root], VOWELS[g.vowel], CONSONANTS[g.consonant]) for g in combinations
    )
    assert "কো" in texts and "র্ক" in texts and "কি" not in texts  # কি is listed
    assert ROOTS.index("ৎ") not in {g.root for g in combinations}  # khanda ta takes no signs
    consonant_roots = len(ROOTS) - 1
    listed_single_sign = sum((g.vowel == 0) != (g.consonant == 0) for g in listed)
    assert len(combinations) == consonant_roots * (len(VOWELS) - 1 + len(CONSONANTS) - 1) - listed_single_sign
