"""Run artefacts a human looks at: metrics log, training curves, per-head confusion matrix and recalls."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers or in CI
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import confusion_matrix


def append_metrics(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_curves(history: list[dict], path: Path) -> None:
    epochs = [r["epoch"] for r in history]
    accuracy_keys = sorted({k for r in history for k in r if k.endswith(("_top1", "_top5"))})
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], label="train loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.legend()
    for key in accuracy_keys:
        ax_acc.plot(epochs, [r.get(key, np.nan) for r in history], label=key)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend(fontsize=7)
    ax_acc.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tick_labels(labels: Sequence[str]) -> list[str]:
    """The labels where matplotlib can draw them; class ids for scripts it cannot shape (Bengali)."""
    if all(label.isascii() for label in labels):
        return list(labels)
    return [str(i) for i in range(len(labels))]


def plot_confusion(
    target: np.ndarray, predicted: np.ndarray, labels: Sequence[str], path: Path, title: str = ""
) -> None:
    matrix = confusion_matrix(target, predicted, labels=range(len(labels)), normalize="true")
    size = min(max(6, len(labels) * 0.28), 30)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(labels))
    font = 7 if len(labels) <= 100 else 4
    ax.set_xticks(ticks, tick_labels(labels), fontsize=font, rotation=90 if len(labels) > 100 else 0)
    ax.set_yticks(ticks, tick_labels(labels), fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "validation confusion (row-normalised)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def per_class_rows(target: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> list[dict]:
    """Per class present in `target`: support, recall and the class it is most often mistaken for."""
    rows = []
    for c in np.unique(target[target >= 0]):
        got = predicted[target == c]
        wrong = got[got != c]
        confused = int(np.bincount(wrong).argmax()) if len(wrong) else -1
        rows.append(
            {
                "id": int(c),
                "label": labels[c],
                "support": len(got),
                "recall": round(float((got == c).mean()), 4),
                "most_confused_with": labels[confused] if confused >= 0 else "",
            }
        )
    return rows


def write_head_report(
    target: np.ndarray, predicted: np.ndarray, labels: Sequence[str], run_dir: Path, head: str
) -> None:
    """confusion_<head>.png and per_class_<head>.csv (the labels in full, whatever the script)."""
    known = target >= 0
    target, predicted = target[known], predicted[known]
    plot_confusion(
        target, predicted, labels, run_dir / f"confusion_{head}.png", f"{head}: validation confusion"
    )
    rows = per_class_rows(target, predicted, labels)
    with (run_dir / f"per_class_{head}.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "label", "support", "recall", "most_confused_with"])
        writer.writeheader()
        writer.writerows(rows)
