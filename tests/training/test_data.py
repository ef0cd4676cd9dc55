import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from contract.preprocessing import PreprocessConfig, preprocess
from training.data.datasets import CanvasDataset
from training.data.femnist import load_femnist, writer_split
from training.data.idx import load_idx_pair, read_idx
from training.data.labels import LETTERS, merged_letter
from training.data.tasks import load_task


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def test_idx_round_trip(tmp_path):
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    labels = np.array([1, 2, 26], np.uint8)
    x, y = load_idx_pair(write_idx(tmp_path / "i.gz", images), write_idx(tmp_path / "l.gz", labels))
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "raw", images, compress=False)), images)
    wide = np.array([[-5, 70000]], dtype=">i4")
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "w.gz", wide)), [[-5, 70000]])


def test_emnist_images_are_transposed_back(tmp_path):
    upright = np.zeros((1, 28, 28), np.uint8)
    upright[0, 2:26, 5] = 255  # a vertical bar, as the writer drew it
    stored = upright.transpose(0, 2, 1).copy()  # EMNIST's on-disk layout: a horizontal bar
    x, _ = load_idx_pair(
        write_idx(tmp_path / "i.gz", stored),
        write_idx(tmp_path / "l.gz", np.array([1], np.uint8)),
        transposed=True,
    )
    np.testing.assert_array_equal(x, upright)


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x00\x00\x08", b"\x01\x02\x08\x01\x00\x00\x00\x05abc", b"\x00\x00\x08\x01\x00\x00\x00\x05ab"],
)
def test_bad_idx_files_are_refused(tmp_path, payload):
    path = tmp_path / "bad"
    path.write_bytes(payload)
    with pytest.raises(ValueError):
        read_idx(path)


def test_idx_pair_shapes_must_match(tmp_path):
    with pytest.raises(ValueError):
        load_idx_pair(
            write_idx(tmp_path / "i.gz", np.zeros((3, 2, 2), np.uint8)),
            write_idx(tmp_path / "l.gz", np.zeros(2, np.uint8)),
        )


def test_letters_merge_case():
    assert LETTERS[merged_letter("a")] == LETTERS[merged_letter("A")] == "A"
    assert merged_letter("z") == 25 and merged_letter("7") is None


def test_writer_split_is_disjoint_and_deterministic():
    writers = np.repeat([f"w{i}" for i in range(40)], 5)
    train, val = writer_split(writers, 0.2, seed=3)
    assert set(writers[train]).isdisjoint(writers[val])
    assert len(train) + len(val) == len(writers) and len(set(writers[val])) == 8
    _, again_val = writer_split(writers, 0.2, seed=3)
    np.testing.assert_array_equal(val, again_val)
    _, other_val = writer_split(writers, 0.2, seed=4)
    assert set(writers[other_val]) != set(writers[val])


def test_letter_task_from_femnist(fake_data_dir):
    data = load_task("letter", fake_data_dir, val_fraction=0.25, seed=0)
    assert data.heads == {"letter": LETTERS}
    samples = load_femnist(fake_data_dir / "femnist" / "femnist.npz")
    n_letters = int(
        np.isin(samples.chars, list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")).sum()
    )
    assert len(data.train) + len(data.val) == n_letters
    assert set(np.unique(data.train.targets["letter"])) == set(range(26))
    assert [p["split"] for p in data.provenance] == ["train", "validation"]


def test_digit_task_holds_out_the_mnist_test_set(fake_data_dir):
    data = load_task("digit", fake_data_dir, val_fraction=0.25, seed=0)
    assert data.heads == {"digit": tuple("0123456789")}
    assert set(data.tests) == {"mnist_test"} and len(data.tests["mnist_test"]) == 30
    assert len(data.train) == 60 + 6 * 10  # MNIST train + the FEMNIST digits of 6 of the 8 writers
    assert set(np.unique(data.val.targets["digit"])) == set(range(10))
    assert [p["split"] for p in data.provenance] == ["train", "train", "validation", "test (mnist_test)"]


def test_dataset_runs_the_service_preprocessing(fake_data_dir):
    data = load_task("letter", fake_data_dir, val_fraction=0.25, seed=0)
    cfg = PreprocessConfig()
    dataset = CanvasDataset(data.val, cfg)
    x, targets = dataset[3]
    np.testing.assert_array_equal(x.numpy(), preprocess(data.val.images[3], cfg))
    assert int(targets["letter"]) == int(data.val.targets["letter"][3])


def test_photo_variants_are_extra_views_of_the_same_samples(fake_data_dir):
    data = load_task("letter", fake_data_dir, val_fraction=0.25, seed=0)
    cfg = PreprocessConfig()
    dataset = CanvasDataset(data.val, cfg, photo_variants=2, seed=0)
    assert len(dataset) == len(data.val) and len(dataset.views) == 3
    assert all(view.shape == dataset.canvases.shape for view in dataset.views)
    assert not np.allclose(dataset.views[1], dataset.canvases)  # crisp re-renders differ from the scans
    again = CanvasDataset(data.val, cfg, photo_variants=2, seed=0)
    np.testing.assert_array_equal(again.views[2], dataset.views[2])  # reproducible from the seed
