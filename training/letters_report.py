"""Per-class report of an exported letters model on its writer-disjoint validation (ONNX Runtime).

    python -m training.letters_report models/letters --out docs/models/letters [--baseline OTHER_MODEL_DIR]

Writes `per_class.md` and `per_class.csv`: every letter's support, recall and precision, what it is
mistaken for, the most frequent confusion pairs with the case the writer actually wrote (the task
merges upper and lower case, so a lone vertical bar is `I` when it was an I and `L` when it was an l),
and top-1 with a 95 % interval from resampling the validation writers (images of one writer are not
independent). With `--baseline`, both models are scored on the same images and compared pairwise:
images only one of them gets right, McNemar's exact test and the writer-bootstrap interval of the
difference.
"""

from __future__ import annotations

import argparse
import csv
import shlex
import sys
from dataclasses import dataclass
from math import comb
from pathlib import Path

import numpy as np
import onnxruntime as ort

from contract.manifest import Manifest
from contract.preprocessing import PreprocessConfig
from training.config import config_from_dict
from training.data.datasets import render_canvases
from training.data.femnist import load_femnist, writer_split
from training.data.labels import merged_letter
from training.engine import topk_accuracy
from training.scoring import manifest_logits

BOOTSTRAP = 2000
TOP_PAIRS = 15


@dataclass(frozen=True)
class Validation:
    """The letters task's validation split with what the task itself forgets: case and writer."""

    images: np.ndarray
    targets: np.ndarray  # merged letter 0–25
    chars: np.ndarray  # as written: 'a' or 'A'
    writers: np.ndarray


def letters_validation(data_dir: Path, val_fraction: float, seed: int) -> Validation:
    """The same images and order as training.data.letters' validation split (checked by the test)."""
    samples = load_femnist(data_dir / "femnist" / "femnist.npz")
    targets = np.array([-1 if (t := merged_letter(c)) is None else t for c in samples.chars])
    keep = np.flatnonzero(targets >= 0)
    samples, targets = samples.subset(keep), targets[keep]
    _, val = writer_split(samples.writers, val_fraction, seed)
    return Validation(samples.images[val], targets[val], samples.chars[val], samples.writers[val])


@dataclass(frozen=True)
class Canvases:
    canvases: np.ndarray
    kept: np.ndarray  # indices into the validation split of the images with ink


def prepare(validation: Validation, cfg: PreprocessConfig) -> Canvases:
    return Canvases(*render_canvases(validation.images, cfg))


def model_logits(model_dir: Path, canvases: np.ndarray) -> tuple[Manifest, np.ndarray]:
    manifest = Manifest.load(model_dir)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # a report, not a benchmark: leave the other cores alone
    session = ort.InferenceSession(
        str(model_dir / manifest.onnx.file), options, providers=["CPUExecutionProvider"]
    )
    return manifest, manifest_logits(session, manifest, canvases)["letter"]


def writer_bootstrap(values: np.ndarray, writers: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95 % interval of the mean of per-image `values`, resampling whole writers."""
    rng = np.random.default_rng(seed)
    unique, index = np.unique(writers, return_inverse=True)
    sums = np.bincount(index, weights=values, minlength=len(unique))
    counts = np.bincount(index, minlength=len(unique))
    picks = rng.integers(0, len(unique), size=(BOOTSTRAP, len(unique)))
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test on the images exactly one model gets right."""
    n = only_first + only_second
    if n == 0:
        return 1.0
    tail = sum(comb(n, k) for k in range(min(only_first, only_second) + 1)) / 2**n
    return min(1.0, 2 * tail)


def per_class_rows(
    targets: np.ndarray, predicted: np.ndarray, chars: np.ndarray, labels: list[str]
) -> list[dict]:
    rows = []
    for c, label in enumerate(labels):
        mine = targets == c
        got = predicted[mine]
        wrong = got[got != c]
        confused = np.bincount(wrong, minlength=len(labels)) if len(wrong) else np.zeros(len(labels), int)
        worst = int(confused.argmax())
        upper, lower = mine & (chars == label), mine & (chars == label.lower())
        rows.append(
            {
                "label": label,
                "support": int(mine.sum()),
                "upper_lower": f"{int(upper.sum())}/{int(lower.sum())}",
                "recall": round(float((got == c).mean()), 4) if len(got) else float("nan"),
                "recall_upper": round(float((predicted[upper] == c).mean()), 4) if upper.any() else "",
                "recall_lower": round(float((predicted[lower] == c).mean()), 4) if lower.any() else "",
                "precision": round(float((targets[predicted == c] == c).mean()), 4)
                if (predicted == c).any()
                else float("nan"),
                "most_confused_with": labels[worst] if confused[worst] else "",
                "times": int(confused[worst]),
            }
        )
    return rows


def confusion_pairs(
    targets: np.ndarray, predicted: np.ndarray, chars: np.ndarray, labels: list[str]
) -> list[dict]:
    """The most frequent (true → predicted) mistakes, with the case of the true letter as written."""
    wrong = np.flatnonzero(targets != predicted)
    pairs: dict[tuple[int, int], list[str]] = {}
    for i in wrong:
        pairs.setdefault((int(targets[i]), int(predicted[i])), []).append(str(chars[i]))
    ordered = sorted(pairs.items(), key=lambda item: (-len(item[1]), item[0]))[:TOP_PAIRS]
    rows = []
    for (t, p), written in ordered:
        cases = ", ".join(f"{c} × {written.count(c)}" for c in sorted(set(written)))
        rows.append({"true": labels[t], "predicted": labels[p], "count": len(written), "written": cases})
    return rows


def table(rows: list[dict]) -> list[str]:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
    return lines


def percent(value: float) -> str:
    return f"{100 * value:.2f} %"


def report(
    model_dir: Path, out: Path, data_dir: Path | None = None, baseline: Path | None = None, command: str = ""
) -> dict[str, float]:
    manifest = Manifest.load(model_dir)
    cfg = config_from_dict(manifest.training.config)
    if data_dir is not None:
        cfg.data_dir = str(data_dir)
    validation = letters_validation(cfg.data_path, cfg.val_fraction, cfg.seed)
    prepared = prepare(validation, manifest.preprocessing)
    targets = validation.targets[prepared.kept]
    chars, writers = validation.chars[prepared.kept], validation.writers[prepared.kept]
    labels = list(manifest.heads[0].labels)
    _, logits = model_logits(model_dir, prepared.canvases)
    predicted = logits.argmax(axis=1)
    correct = (predicted == targets).astype(np.float64)
    low, high = writer_bootstrap(correct, writers)
    summary = {
        "top1": float(correct.mean()),
        "top5": topk_accuracy(logits, targets, 5),
        "top1_low": low,
        "top1_high": high,
    }
    rows = per_class_rows(targets, predicted, chars, labels)
    pairs = confusion_pairs(targets, predicted, chars, labels)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "per_class.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    lines = [
        f"# Letters model, per class: {manifest.name} {manifest.version}",
        "",
        "Generated by `training/letters_report.py`; do not edit by hand. Reproduce with",
        "",
        "```bash",
        f"HWR_DATA_DIR=../shared/data .venv/bin/{command}",
        "```",
        "",
        f"Model: `{manifest.architecture}`, the float ONNX file (`{manifest.onnx.file}`, sha256 "
        f"`{manifest.onnx.sha256[:12]}…`), scored with ONNX Runtime on the writer-disjoint FEMNIST "
        f"letters validation split: {len(targets)} images by {len(np.unique(writers))} writers who are "
        "not in the training data, preprocessed by the contract as uploads are.",
        "",
        f"- top-1 **{percent(summary['top1'])}** (95 % interval over writers "
        f"{percent(low)} – {percent(high)}), top-5 {percent(summary['top5'])}",
        f"- errors: {int((1 - correct).sum())}, of which the vertical-bar pair I ↔ L "
        f"{int(((targets == 8) & (predicted == 11)).sum() + ((targets == 11) & (predicted == 8)).sum())}",
    ]
    if baseline is not None:
        base_manifest, base_logits = model_logits(baseline, prepared.canvases)
        base_correct = base_logits.argmax(axis=1) == targets
        only_new = int((correct.astype(bool) & ~base_correct).sum())
        only_base = int((~correct.astype(bool) & base_correct).sum())
        d_low, d_high = writer_bootstrap(correct - base_correct, writers)
        summary |= {
            "baseline_top1": float(base_correct.mean()),
            "difference_low": d_low,
            "difference_high": d_high,
            "mcnemar_p": mcnemar_exact(only_new, only_base),
        }
        lines += [
            "",
            "## Against the baseline on the same images",
            "",
            f"Baseline: `{baseline}` — {base_manifest.name} {base_manifest.version}, "
            f"`{base_manifest.architecture}`, top-1 {percent(summary['baseline_top1'])}.",
            "",
            f"- difference {100 * (summary['top1'] - summary['baseline_top1']):+.2f} points "
            f"(95 % interval over writers {100 * d_low:+.2f} to {100 * d_high:+.2f})",
            f"- images only this model gets right: {only_new}; only the baseline: {only_base}; "
            f"McNemar exact p = {summary['mcnemar_p']:.3g}",
        ]
    lines += [
        "",
        "## Most frequent confusions",
        "",
        "`written`: the characters as the writers wrote them (case is merged in the labels).",
        "",
        *table(pairs),
        "",
        "## Per class",
        "",
        "`upper_lower`: how many of the class's images were written upper / lower case; recall per case.",
        "",
        *table(rows),
        "",
    ]
    (out / "per_class.md").write_text("\n".join(lines), encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.letters_report", description=__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="folder for per_class.md and per_class.csv")
    parser.add_argument("--baseline", type=Path, help="another exported letters model to compare with")
    parser.add_argument("--data-dir", type=Path, help="default: HWR_DATA_DIR or ../shared/data")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    command = "python -m training.letters_report " + shlex.join(argv)
    for key, value in report(args.model_dir, args.out, args.data_dir, args.baseline, command).items():
        print(f"{key:20s} {value:.4f}")


if __name__ == "__main__":
    main()
