"""bench.eval.words (synthetic words of held-out writers) and bench.eval.read_eval's scoring, on fake data."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.eval.read_eval import Read, alignment, scores
from bench.eval.words import REPO, build_samples, load_source
from tests.training.conftest import write_fake_femnist, write_fake_mnist
from training.data.femnist import load_femnist, writer_split


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_fake_femnist(root, writers=14)
    return write_fake_mnist(root)


def test_letters_come_from_the_models_held_out_writers_only(data_dir):
    config = json.loads((REPO / "models" / "letters" / "manifest.json").read_text())["training"]["config"]
    samples = load_femnist(data_dir / "femnist" / "femnist.npz")
    train, _ = writer_split(samples.writers, float(config["val_fraction"]), int(config["seed"]))
    source = load_source("letter", data_dir)
    assert len(source.chars) and not set(source.writers) & set(samples.writers[train])
    assert all(c.isalpha() for c in source.chars)


@pytest.mark.parametrize("task", ["letter", "digit"])
def test_samples_are_deterministic_photos_of_their_text(data_dir, task):
    source = load_source(task, data_dir)
    first, again = (
        build_samples(task, 4, seed=3, source=source),
        build_samples(task, 4, seed=3, source=source),
    )
    assert [s.image for s in first] == [s.image for s in again]
    assert [s.image for s in build_samples(task, 4, seed=4, source=source)] != [s.image for s in first]
    for sample in first:
        image = cv2.imdecode(np.frombuffer(sample.image, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[1] > image.shape[0]  # a line of writing
        assert sample.text == sample.written.upper()
        assert sample.text.isdigit() if task == "digit" else sample.text.isalpha()
        assert (3 <= len(sample.text) <= 8) if task == "digit" else len(sample.text) >= 2


def test_alignment_and_scores():
    pairs = alignment("HELO", "HELLO")
    assert "".join(a for a, _ in pairs if a) == "HELO" and "".join(b for _, b in pairs if b) == "HELLO"
    assert sum(a != b for a, b in pairs) == 1  # the Levenshtein distance
    reads = [Read("AB", "AB", (0.9, 0.4)), Read("CD", "CX", (0.9, 0.9))]
    loose = scores(reads, 0.0)
    assert loose["char_acc"] == 0.75 and loose["string_acc"] == 0.5 and loose["confident_wrong"] == 0.5
    strict = scores(reads, 0.5)  # "A?" and "CX"
    assert strict["reject_rate"] == 0.25 and strict["accepted_acc"] == pytest.approx(2 / 3)
    assert strict["string_acc"] == 0.0 and strict["confident_wrong"] == 0.5
