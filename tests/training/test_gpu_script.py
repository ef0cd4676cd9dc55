"""The GPU run's script: every variant builds and trains a step; its results fit a transfer back."""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import tarfile

import numpy as np
import pytest
import torch

from training.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from training.config import REPO_ROOT, load_config
from training.models import create_model
from training.packed import apply_overrides
from training.packing import folder_report

SCRIPT = REPO_ROOT / "scripts" / "train_graphemes_gpu.sh"
HEADS = {"grapheme_root": 168, "vowel_diacritic": 11, "consonant_diacritic": 7}


def variants() -> dict[str, list[str]]:
    """Variant name → its `KEY=VALUE` overrides, as the script lists them."""
    listed = subprocess.run(["bash", str(SCRIPT), "--list"], capture_output=True, text=True, check=True)
    out = {}
    for line in listed.stdout.splitlines():
        name, *words = shlex.split(line, posix=False)
        out[name] = [w for w in words if w != "--set"]
    return out


def bring_back_module():
    spec = importlib.util.spec_from_file_location(
        "gpu_bring_back", REPO_ROOT / "scripts" / "gpu_bring_back.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_primary_variant_is_the_committed_recipe():
    assert variants()["main"] == []


@pytest.mark.parametrize("name", sorted(variants()))
def test_every_variant_trains_a_step_at_64_px(name):
    config = apply_overrides(
        load_config(REPO_ROOT / "training/configs/graphemes.yaml").to_dict(), variants()[name]
    )
    torch.manual_seed(0)
    model = create_model(config["model"], heads=HEADS, **config.get("model_kwargs", {}))
    out = model(torch.rand(2, 1, 64, 64))
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: (2, n) for k, n in HEADS.items()}
    sum(v.logsumexp(1).sum() for v in out.values()).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_the_script_refuses_to_run_without_a_pack(tmp_path):
    run = subprocess.run(
        ["bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        env={"PACK_ROOT": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 2 and "no pack folders" in run.stderr


def test_bring_back_halves_weights_cuts_pieces_and_keeps_the_best_first(tmp_path, monkeypatch):
    module = bring_back_module()
    results, out = tmp_path / "gpu", tmp_path / "out"
    models = {}
    for name, select in (("small", 0.5), ("best", 0.9), ("worst", 0.1)):
        model = create_model("char_resnet", heads=HEADS, widths=[16, 32, 64]).eval()
        models[name] = model
        (results / name).mkdir(parents=True)
        save_checkpoint(
            results / name / "best.pt",
            model_name="char_resnet",
            model_kwargs={"heads": HEADS, "widths": [16, 32, 64]},
            model_state=model.state_dict(),
        )
        (results / name / "history.json").write_text(json.dumps([{"select": select}]))
        (results / f"{name}.log").write_text(f"{name} log\n")
    one = len(module.compact_checkpoint(results / "best" / "best.pt"))
    monkeypatch.setattr(module, "MAX_FILE", one // 2 + 1)  # two pieces each
    monkeypatch.setattr(module, "MAX_FILES", 6)  # logs, notes and two checkpoints of two pieces

    notes = module.bring_back(results, out)
    assert notes[1].startswith("best:") and notes[2].startswith("small:") and "left behind" in notes[3]
    assert sorted(p.name for p in out.iterdir()) == [
        "best.best.pt.00",
        "best.best.pt.01",
        "brought.txt",
        "logs.tar.gz",
        "small.best.pt.00",
        "small.best.pt.01",
    ]
    whole = tmp_path / "best.pt"
    whole.write_bytes(b"".join(p.read_bytes() for p in sorted(out.glob("best.best.pt.*"))))
    restored = model_from_checkpoint(load_checkpoint(whole))
    assert next(restored.parameters()).dtype == torch.float32
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        for head, value in restored(x).items():
            np.testing.assert_allclose(value.numpy(), models["best"](x)[head].numpy(), atol=1e-2)
    with tarfile.open(out / "logs.tar.gz") as tar:
        assert {"best.log", "best/history.json", "worst/history.json"} <= set(tar.getnames())


def test_pack_folders_report_their_size_and_warn_over_the_transfer_limit(tmp_path):
    (tmp_path / "train0.images.xz").write_bytes(b"x" * 2_000_000)
    assert folder_report(tmp_path) == f"{tmp_path}: 2.0 MB"
    assert "over 1 MB: build with more --out folders" in folder_report(tmp_path, limit=1_000_000)
