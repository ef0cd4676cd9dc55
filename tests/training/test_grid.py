"""An experiment grid end to end on the drawn data: expand, train each run, report; finished runs reused."""

import csv
from pathlib import Path

import pytest
import yaml

from training.__main__ import main
from training.config import REPO_ROOT
from training.grid import expand, load_grid

SMOKE_GRID = {
    "name": "smoke_grid",
    "base": "training/configs/smoke.yaml",
    "metric": "letter_top1",
    "fixed": {"epochs": 1, "batch_size": 16, "threads": 1, "limit_train": 0, "limit_val": 0},
    "axes": {
        "augmentation": {"None": {}, "Cutout+CutMix": {"augment": {"cutout": True}, "mix": ["cutmix"]}},
        "loss": {"OHEM": {"loss": "ohem"}},
    },
    "notes": "Smoke grid for the tests.",
}


@pytest.fixture(scope="module")
def grid_run(fake_data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    spec_path = root / "smoke_grid.yaml"
    spec_path.write_text(yaml.safe_dump(SMOKE_GRID, sort_keys=False))  # file order is run order
    args = ["grid", "--config", str(spec_path), "--runs-dir", str(root / "runs"), "--out", str(root / "docs")]
    main([*args, "--set", f"data_dir={fake_data_dir}"])
    return spec_path, root, args


def test_report_has_a_row_per_run_with_train_val_and_gap(grid_run):
    _, root, _ = grid_run
    with (root / "docs" / "smoke_grid.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["augmentation"], r["loss"]) for r in rows] == [("None", "OHEM"), ("Cutout+CutMix", "OHEM")]
    for row in rows:
        val, train = float(row["val_letter_top1"]), float(row["train_letter_top1"])
        assert 0.0 <= val <= 1.0 and float(row["gap"]) == pytest.approx(train - val, abs=2e-4)
    markdown = (root / "docs" / "smoke_grid.md").read_text()
    assert "Smoke grid for the tests." in markdown and "## By augmentation" in markdown
    for chart in ("smoke_grid_by_augmentation.png", "smoke_grid_by_loss.png", "smoke_grid_overfitting.png"):
        assert (root / "docs" / chart).stat().st_size > 0 and f"]({chart})" in markdown
    assert not list((root / "runs").rglob("*.onnx"))  # train only, no export


def test_finished_runs_are_reused(grid_run, fake_data_dir, capsys):
    _, root, args = grid_run
    stamps = {p: p.stat().st_mtime_ns for p in (root / "runs").rglob("best.pt")}
    main([*args, "--set", f"data_dir={fake_data_dir}"])
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert "epoch 1:" not in capsys.readouterr().out


@pytest.mark.parametrize(("name", "runs"), [("bengali_aug_loss", 14), ("letters_activation_width", 21)])
def test_shipped_grids_expand(name, runs):
    expanded = expand(load_grid(REPO_ROOT / "training" / "grids" / f"{name}.yaml"))
    assert len(expanded) == runs and len({r.slug for r in expanded}) == runs


def test_bengali_grid_is_the_studys_augmentation_by_loss_grid():
    runs = expand(load_grid(REPO_ROOT / "training" / "grids" / "bengali_aug_loss.yaml"))
    by_name = {" + ".join(r.levels.values()): r.config for r in runs}
    cfg = by_name["Cutout+Mixup+CutMix + OHEM"]
    assert cfg.task == "grapheme" and cfg.loss == "ohem" and cfg.ohem_rate == 0.5
    assert set(cfg.mix) == {"cutmix", "mixup"} and cfg.augment.cutout and cfg.augment.preset == "baseline"
    assert cfg.head_weights["grapheme_root"] == 2.0 and cfg.preprocess.canvas_size == 32
    none = by_name["None + CE"]
    assert none.mix == () and not none.augment.cutout and none.loss == "ce"


def test_letters_grid_swaps_the_model_for_the_mlp():
    runs = expand(load_grid(Path(REPO_ROOT / "training" / "grids" / "letters_activation_width.yaml")))
    cfg = runs[0].config
    assert cfg.model == "mlp" and set(cfg.model_kwargs) == {"activation", "hidden"}
