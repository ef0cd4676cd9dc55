"""Packs (preprocessed canvases for a GPU machine) and the time-budgeted trainer that reads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from training.checkpoint import load_checkpoint, model_from_checkpoint
from training.config import REPO_ROOT, TrainConfig, config_from_dict
from training.pack_format import LEVELS, dequantise, quantise, read_pack, write_meta, write_split
from training.packed import GpuAugment, apply_overrides, downsampled_preprocess, lr_at, train

HEADS = {"grapheme_root": ["a", "b", "c"], "vowel_diacritic": ["0", "x"], "consonant_diacritic": ["0", "y"]}


def canvases(n: int, seed: int, size: int = 16) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Class k draws a bar in row band k: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    roots = rng.integers(0, 3, n)
    images = np.zeros((n, size, size), np.float32)
    for i, root in enumerate(roots):
        images[i, 2 + 4 * root : 5 + 4 * root, 3:13] = 1.0
    targets = {"grapheme_root": roots, "vowel_diacritic": np.zeros(n, int), "consonant_diacritic": roots % 2}
    return images, targets


def write_pack(folders: list[Path], train_samples: int = 256) -> None:
    cfg = TrainConfig(name="tiny", task="grapheme", model="char_resnet", lr=0.01)
    cfg.model_kwargs = {"widths": [4, 8], "blocks": [1, 1]}
    cfg.packed = {"batch_size": 32}
    config = cfg.to_dict()
    config["preprocess"] |= {"box_size": 14, "canvas_size": 16}
    for i, folder in enumerate(folders):
        write_split(folder, f"train{i}", *canvases(train_samples, i))
        write_split(folder, "val", *canvases(64, 100))
        write_meta(folder, {"config": config, "heads": HEADS, "provenance": [], "counts": {}})


def test_quantised_canvases_keep_their_grey_within_half_a_level():
    x = np.random.default_rng(0).random((5, 8, 8)).astype(np.float32)
    assert np.abs(dequantise(quantise(x)) - x).max() <= 0.5 / LEVELS + 1e-6


def test_read_pack_merges_training_parts_and_keeps_one_copy_of_the_rest(tmp_path):
    folders = [tmp_path / "a", tmp_path / "b"]
    write_pack(folders, train_samples=10)
    meta, splits = read_pack([*folders, tmp_path / "lost"])
    assert meta["heads"] == HEADS
    assert len(splits["train"]) == 20 and len(splits["val"]) == 64
    assert splits["train"].images.dtype == np.uint8 and splits["train"].images.max() <= LEVELS


def test_read_pack_without_meta_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"pack\.json"):
        read_pack([tmp_path])


def test_overrides_parse_json_and_fall_back_to_strings():
    config = apply_overrides({"a": {"b": 1}}, ["a.b=2", "a.c=[1,2]", "loss=ohem", 'mix=["cutmix"]'])
    assert config == {"a": {"b": 2, "c": [1, 2]}, "loss": "ohem", "mix": ["cutmix"]}


def test_downsampled_preprocess_scales_every_size_knob():
    base = {
        "box_size": 56,
        "canvas_size": 64,
        "min_stroke": 5.0,
        "max_stroke": 10.0,
        "blur_sigma": 1.0,
        "mean": 0.1,
    }
    half = downsampled_preprocess(base, 2)
    assert half == {
        "box_size": 28,
        "canvas_size": 32,
        "min_stroke": 2.5,
        "max_stroke": 5.0,
        "blur_sigma": 0.5,
        "mean": 0.1,
    }


def test_learning_rate_warms_up_then_decays_to_zero():
    assert lr_at(0.0, 1.0) == 0.0 and lr_at(0.05, 1.0) == pytest.approx(1.0)
    assert lr_at(0.5, 1.0) < 1.0 and lr_at(1.0, 1.0) == pytest.approx(0.0)


def test_gpu_augment_keeps_shape_and_range_and_is_identity_when_off():
    x = torch.rand(8, 1, 16, 16)
    out = GpuAugment({"cutout_p": 1.0})(x.clone())
    assert out.shape == x.shape and out.min() >= 0.0 and out.max() <= 1.0
    off = GpuAugment({"affine_p": 0.0, "morph_p": 0.0})
    assert torch.allclose(off(x.clone()), x, atol=1e-5)


def test_training_from_a_pack_learns_and_writes_an_exportable_checkpoint(tmp_path):
    folders = [tmp_path / "a", tmp_path / "b"]
    write_pack(folders)
    result = train(folders, tmp_path / "run", minutes=0.08, overrides=["packed.downsample=1"], command="test")
    assert result["epochs"] >= 1
    checkpoint = load_checkpoint(tmp_path / "run" / "best.pt")
    assert checkpoint["device"] in (
        "cpu",
        f"cuda ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "cpu",
    )
    cfg = config_from_dict(checkpoint["config"])  # the trainer's config is a valid TrainConfig
    assert cfg.preprocess.canvas_size == 16
    model = model_from_checkpoint(checkpoint)
    assert set(model(torch.zeros(1, 1, 16, 16))) == set(HEADS)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history[-1]["val_grapheme_root_top1"] > 0.5  # bars in three bands: learnt in seconds


def test_downsampled_training_sees_half_size_canvases(tmp_path):
    write_pack([tmp_path / "a"])
    train([tmp_path / "a"], tmp_path / "run", minutes=0.02, overrides=["packed.downsample=2"], command="test")
    checkpoint = load_checkpoint(tmp_path / "run" / "best.pt")
    assert checkpoint["config"]["preprocess"]["canvas_size"] == 8


def test_the_trainer_imports_without_the_cpu_side_libraries(tmp_path):
    """It runs on a bare GPU image: no fonts' shaping library, no albumentations, no OpenCV, no app."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        blocked = {'uharfbuzz', 'albumentations', 'cv2', 'PIL', 'app', 'yaml', 'skimage'}\n"
        "        if name.split('.')[0] in blocked:\n"
        "            raise ImportError(f'blocked {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO_ROOT}"}
    done = subprocess.run(
        [sys.executable, "-c", "import training.packed"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_parallel_compression_reads_back_as_one_stream():
    import lzma

    from training.pack_format import compress

    raw = np.random.default_rng(0).integers(0, 3, 300_000, dtype=np.uint8).tobytes()
    assert lzma.decompress(compress(raw, workers=2, chunk=100_000)) == raw
    assert lzma.decompress(compress(b"", workers=2)) == b""


def test_a_stopped_run_resumes_where_it_stopped(tmp_path):
    write_pack([tmp_path / "a"])
    first = train([tmp_path / "a"], tmp_path / "run", minutes=0.02, overrides=[], command="test")
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last["epoch"] == first["epochs"] and last["elapsed"] > 0
    # A longer budget: the run goes on from its last pass, its history and step count kept.
    again = train([tmp_path / "a"], tmp_path / "run", minutes=0.06, overrides=[], command="test", resume=True)
    assert again["epochs"] > first["epochs"] and again["steps"] > first["steps"]
    assert again["history"][: first["epochs"]] == first["history"]


def test_the_variant_report_lists_each_run_with_its_speed(tmp_path, monkeypatch):
    from training import packed_report

    write_pack([tmp_path / "a"])
    for name in ("narrow", "px8"):
        overrides = ["packed.downsample=2"] if name == "px8" else []
        train([tmp_path / "a"], tmp_path / "runs" / name, minutes=0.01, overrides=overrides, command="test")
    monkeypatch.setattr(packed_report, "TIMED_RUNS", 5)
    out = tmp_path / "report.md"
    packed_report.main([str(tmp_path / "runs"), "--out", str(out)])
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith(("| narrow", "| px8"))]
    assert len(rows) == 2 and "| 8 px |" in text and "| 16 px |" in text and " ms |" in rows[0]
