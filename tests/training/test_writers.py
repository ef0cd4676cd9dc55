"""Writer identification training: splits, the IAM loader on generated IAM-format files, metrics,
and a seconds-long closed- and open-set run whose export the service loads and serves."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.runtime.embedder import load_embedder
from contract.writer_manifest import WriterManifest
from tests.training.conftest import tiny_open_set_config, write_fake_femnist
from training.writers import iam
from training.writers.config import WriterConfig, load_writer_config
from training.writers.data import femnist_open, most_prolific, split_within_writers, split_writers
from training.writers.export import export_embedding
from training.writers.metrics import enrol_identify, equal_error_rate, grouped_accuracy
from training.writers.train import closed_data, group_batches, random_shift, train_closed, train_open

REPO = Path(__file__).resolve().parents[2]

# --- splits ---------------------------------------------------------------------------------


def test_closed_split_is_within_each_writer():
    y = np.repeat(np.arange(3), 20)
    train, val, test = split_within_writers(y, (0.7, 0.15, 0.15), seed=0)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(val) + len(test) == 60
    for part, share in ((train, 14), (val, 3), (test, 3)):
        assert np.array_equal(np.bincount(y[part]), [share] * 3)  # every writer in every split


def test_open_split_shares_no_writer():
    writers = np.repeat([f"w{i}" for i in range(20)], 5)
    train, val, held_out = split_writers(writers, 0.7, 0.1, seed=1)
    assert (len(train), len(val), len(held_out)) == (14, 2, 4)
    assert not set(train) & set(held_out) and not set(val) & set(held_out)


def test_most_prolific_breaks_ties_by_id():
    assert list(most_prolific(np.array(["b", "a", "b", "c", "a", "d"]), 2)) == ["a", "b"]


# --- IAM ------------------------------------------------------------------------------------


def write_tiny_iam(root: Path, writers: int = 3, forms_per_writer: int = 2, lines: int = 4) -> Path:
    """forms_for_parsing.txt + sentences/<prefix>/<form>/<form>-s00-0N.png, as IAM distributes them."""
    rng = np.random.default_rng(0)
    rows = ["# IAM forms: form writer ...", ""]
    for w in range(writers):
        for f in range(forms_per_writer):
            form = f"a{w:02d}-{f:03d}u"
            rows.append(f"{form} {w:03d} 0 0 0 0")
            folder = root / "sentences" / form.split("-")[0] / form
            folder.mkdir(parents=True)
            for line in range(lines):
                width = int(rng.integers(180, 400))
                page = np.full((60, width), 245, np.uint8)
                cv2.putText(page, "the quick", (5, 40), w, 1.2, 20, 2 + w % 2, cv2.LINE_AA)
                cv2.imwrite(str(folder / f"{form}-s00-{line:02d}.png"), page)
    (root / "forms_for_parsing.txt").write_text("\n".join(rows) + "\n")
    return root


def test_iam_forms_and_sentences(tmp_path: Path):
    root = write_tiny_iam(tmp_path)
    assert iam.parse_forms(root / "forms_for_parsing.txt")["a01-000u"] == "001"
    images = iam.sentence_images(root)
    assert len(images) == 24 and images[0].writer == "000"
    assert iam.top_writers(images, 2) == ["000", "001"]


def test_iam_resize_keeps_aspect_and_crops_are_square(tmp_path: Path):
    path = tmp_path / "line.png"
    cv2.imwrite(str(path), np.full((50, 400), 255, np.uint8))
    ink = iam.load_ink(path, 113)
    assert ink.shape == (113, 904) and ink.max() == 0.0  # white paper is no ink
    assert iam.random_crops(ink, 113, 4, np.random.default_rng(0)).shape == (4, 113, 113)
    assert iam.sequential_crops(ink, 113).shape == (8, 113, 113)
    assert iam.sequential_crops(ink[:, :50], 113).shape == (1, 113, 113)  # padded with paper


def test_iam_splits_by_sentence_image_not_by_crop(tmp_path: Path):
    cfg = WriterConfig(source="iam", iam_dir=str(write_tiny_iam(tmp_path)), top_writers=2, crops_per_image=3)
    train, _, test, writers = closed_data(cfg)
    assert writers == ["000", "001"] and train.x.shape[1:] == (1, 113, 113)
    assert len(train) == 2 * 6 * 3  # 70 % of each writer's 8 images, 3 random crops each
    assert set(np.unique(test.y)) == {0, 1}


def test_the_iam_study_runs_from_its_config(tmp_path: Path):
    cfg = load_writer_config(
        REPO / "training/configs/writers_iam.yaml",
        [f"iam_dir={write_tiny_iam(tmp_path / 'iam')}", "epochs=1", "crops_per_image=2", "threads=1"],
    )
    report = train_closed(cfg, tmp_path / "run")
    assert report["writers"] == 3 and 0 <= report["test_top1"] <= 1
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "metrics.json").is_file()


# --- metrics --------------------------------------------------------------------------------


def test_eer_of_separated_and_of_identical_scores():
    assert equal_error_rate(np.array([0.9, 0.8]), np.array([0.1, 0.2, 0.3]))[0] == 0.0
    eer, _ = equal_error_rate(np.array([0.5, 0.5]), np.array([0.5, 0.5]))
    assert eer == pytest.approx(0.5)


def test_grouping_characters_corrects_single_mistakes():
    y = np.zeros(10, np.int64)
    logits = np.tile([2.0, 0.0], (10, 1))
    logits[:3] = [0.0, 1.0]  # three characters alone look like writer 1
    assert grouped_accuracy(logits, y, 1) == pytest.approx(0.7)
    assert grouped_accuracy(logits, y, 5) == 1.0 and grouped_accuracy(logits, y, 5, vote=True) == 1.0


def test_enrol_identify_with_perfect_embeddings():
    writers = np.repeat(np.arange(6), 12)
    embeddings = np.eye(6)[writers] + np.random.default_rng(0).normal(0, 0.05, (72, 6))
    cell = enrol_identify(embeddings, writers, enrol=5, query=2)
    assert cell["writers"] == 6 and cell["queries"] == 6 * 3
    assert cell["top1"] == 1.0 and cell["eer"] == 0.0


# --- end to end -----------------------------------------------------------------------------


def test_closed_set_on_femnist_format(tmp_path: Path):
    data_dir = write_fake_femnist(tmp_path / "data", writers=4)
    cfg = load_writer_config(
        REPO / "training/configs/writers_closed_femnist.yaml",
        [f"data_dir={data_dir}", "epochs=1", "top_writers=3", "threads=1"],
    )
    report = train_closed(cfg, tmp_path / "run")
    assert report["writers"] == 3 and "test_top1_over_5" in report and "test_top1_over_20_vote" in report


def test_open_set_export_is_served_by_the_service(tmp_path: Path):
    cfg = tiny_open_set_config(tmp_path)
    model, report = train_open(cfg, tmp_path / "run")
    assert (
        report["heldout_writers"] == 2 and "heldout_k5_q1_top1" in report and "heldout_k20_q20_eer" in report
    )
    export_embedding(model, cfg, report, tmp_path / "model", "pytest")
    manifest = WriterManifest.load(tmp_path / "model")  # the service's own schema accepts it
    assert manifest.embedding.dim == 16 and manifest.preprocessing == cfg.preprocess
    # One "unknown" threshold per query size measured on the validation writers (2 writers here,
    # enough characters each for the 1- and 5-character queries).
    assert set(manifest.thresholds_by_query) >= {1, 5}
    one_character = manifest.thresholds_by_query[1]
    assert manifest.threshold_for(1) == one_character == round(report["val_q1_eer_threshold"], 4)
    embedder = load_embedder(tmp_path / "model")
    vectors = embedder.embed(np.zeros((3, 1, 28, 28), np.float32))
    assert vectors.shape == (3, 16) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    # …and answers over HTTP: enrol two writers from their characters, identify one of them.
    samples = np.load(Path(cfg.data_dir) / "femnist" / "femnist.npz")

    def png(i: int) -> tuple[str, tuple[str, bytes, str]]:  # dark ink on white paper, as photographed
        return "files", (
            f"{i}.png",
            cv2.imencode(".png", 255 - samples["images"][i])[1].tobytes(),
            "image/png",
        )

    files = {w: [png(i) for i in np.flatnonzero(samples["writers"] == w)[10:16]] for w in ("f0000", "f0001")}
    settings = Settings(
        model_dir=tmp_path / "none", writer_model_dir=tmp_path / "model", writer_db=str(tmp_path / "w.db")
    )
    with TestClient(create_app(settings)) as client:
        for writer, own in files.items():
            assert client.post("/writers", data={"name": writer}, files=own[:4]).status_code == 201
        answer = client.post("/identify/writer", files=files["f0001"][4:]).json()
        assert answer["characters"] == 2 and {c["name"] for c in answer["candidates"]} == {"f0000", "f0001"}


# --- training options: groups of one writer, shifted inputs -----------------------------------


def test_group_batches_hold_whole_groups_of_one_writer():
    y = np.repeat(np.arange(5), 13)
    batches = group_batches(y, group=4, size=8, rng=np.random.default_rng(0))
    seen = np.concatenate(batches)
    assert len(seen) == len(np.unique(seen)) == 5 * 12  # each writer's remainder of 1 sits out
    for batch in batches:
        groups = y[batch].reshape(-1, 4)
        assert (groups == groups[:, :1]).all() and len(batch) <= 8


def test_random_shift_moves_ink_and_fills_with_paper():
    x = torch.full((3, 1, 8, 8), -0.5)
    x[:, :, 3:5, 3:5] = 2.0
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(random_shift(x, 0, -0.5, generator), x)
    moved = random_shift(x, 2, -0.5, generator)
    assert moved.shape == x.shape and set(moved.unique().tolist()) <= {-0.5, 2.0}
    assert torch.equal((moved == 2.0).sum(dim=(1, 2, 3)), torch.full((3,), 4))  # ink kept whole


def test_open_set_trains_on_groups_and_shifts(tmp_path: Path):
    cfg = tiny_open_set_config(tmp_path, "group_size=4", "shift=1", "select=[5, 5]")
    _, report = train_open(cfg, tmp_path / "run")
    assert np.isfinite(report["heldout_k5_q5_top1"])


def write_fake_banglalekha(data_dir: Path, writers: int, per_writer: int) -> None:
    """BanglaLekha-Isolated's npz layout (64×64 ink-high, labels N×3, writer index), glyphs drawn in code."""
    rng = np.random.default_rng(1)
    images = np.zeros((writers * per_writer, 64, 64), np.uint8)
    for i, image in enumerate(images):
        cv2.putText(image, "AKX"[i % 3], (12, 48), cv2.FONT_HERSHEY_SIMPLEX, 1.5, 255, 2 + i // per_writer)
    labels = np.zeros((len(images), 3), np.int16)
    labels[:, 0] = rng.integers(0, 5, len(images))
    path = data_dir / "bengali" / "banglalekha_isolated.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        images=images,
        labels=labels,
        writer=np.repeat(np.arange(writers, dtype=np.int32), per_writer),
        writers=np.array([f"w{i}" for i in range(writers)]),
    )


def test_extra_writers_only_join_training_and_are_capped(tmp_path: Path):
    plain = tiny_open_set_config(tmp_path)
    write_fake_banglalekha(Path(plain.data_dir), writers=4, per_writer=7)
    cfg = tiny_open_set_config(tmp_path, "extra_writers=banglalekha", "extra_per_writer=5")
    train, val, held_out = femnist_open(cfg)
    base_train, base_val, base_held_out = femnist_open(plain)
    extra = np.char.startswith(train.writer_ids.astype(str), "bl")
    # Four more training classes, five characters each; FEMNIST's own sets unchanged.
    assert extra.sum() == 4 * 5 and len(np.unique(train.y)) == len(np.unique(base_train.y)) + 4
    assert np.array_equal(val.writer_ids, base_val.writer_ids)
    assert np.array_equal(held_out.writer_ids, base_held_out.writer_ids)
    # Labels index one sorted list of all training writers: one label per writer, never shared.
    pairs = set(zip(train.y.tolist(), train.writer_ids.tolist(), strict=True))
    assert len(pairs) == len(np.unique(train.y)) == len(np.unique(train.writer_ids))
    _, report = train_open(cfg, tmp_path / "run")
    assert report["train_writers"] == len(np.unique(base_train.writer_ids)) + 4
    with pytest.raises(ValueError, match="extra_writers"):
        femnist_open(tiny_open_set_config(tmp_path, "extra_writers=iam"))
