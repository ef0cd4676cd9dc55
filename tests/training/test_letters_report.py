"""The letters per-class report: the task's own validation split, the exported file's own top-1, and a
pairwise comparison that finds no difference between a model and itself."""

import csv

import numpy as np
import pytest

from contract.manifest import Manifest
from training.__main__ import main
from training.config import load_config
from training.data.loading import load_data
from training.letters_report import letters_validation, mcnemar_exact, report, writer_bootstrap

TINY = ["--set", "epochs=1", "--set", "batch_size=16", "--set", "model_kwargs={widths: [8, 16, 16]}"]


@pytest.fixture(scope="module")
def exported(fake_data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("letters_report")
    model_dir = root / "model"
    main(
        [
            "train",
            "--run-dir",
            str(root / "run"),
            "--set",
            f"data_dir={fake_data_dir}",
            *TINY,
            "--export",
            str(model_dir),
        ]
    )
    return model_dir


def test_validation_is_the_letter_tasks_split(fake_data_dir):
    cfg = load_config(None, [f"data_dir={fake_data_dir}"])
    val = load_data(cfg, evaluation_only=True).val
    mine = letters_validation(fake_data_dir, cfg.val_fraction, cfg.seed)
    assert np.array_equal(mine.images, val.images) and np.array_equal(mine.targets, val.targets["letter"])
    assert {c.upper() for c in mine.chars} <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def test_report_matches_the_exported_metrics_and_compares_pairwise(exported, fake_data_dir, tmp_path):
    summary = report(
        exported, tmp_path, fake_data_dir, baseline=exported, command="python -m training.letters_report"
    )
    assert summary["top1"] == pytest.approx(Manifest.load(exported).metrics["val_letter_top1"], abs=1e-4)
    assert summary["top1_low"] <= summary["top1"] <= summary["top1_high"]
    assert summary["baseline_top1"] == summary["top1"] and summary["mcnemar_p"] == 1.0
    assert summary["difference_low"] == summary["difference_high"] == 0.0
    rows = list(csv.DictReader((tmp_path / "per_class.csv").open()))
    assert [r["label"] for r in rows] == list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    text = (tmp_path / "per_class.md").read_text()
    assert "## Most frequent confusions" in text and "python -m training.letters_report" in text


def test_mcnemar_exact_is_a_two_sided_binomial_test():
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(10, 2) == mcnemar_exact(2, 10) == pytest.approx(2 * 79 / 4096)


def test_writer_bootstrap_resamples_whole_writers():
    # Two writers, one always right and one always wrong: the interval spans nearly 0 to 1.
    values = np.array([1.0] * 10 + [0.0] * 10)
    writers = np.array(["a"] * 10 + ["b"] * 10)
    low, high = writer_bootstrap(values, writers)
    assert low == 0.0 and high == 1.0
    assert writer_bootstrap(np.ones(6), np.array(list("aabbcc"))) == (1.0, 1.0)
