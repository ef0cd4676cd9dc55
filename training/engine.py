"""One epoch of training and one pass of evaluation; both return plain metric dicts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from training.ema import ModelEma
from training.hardware import Hardware
from training.losses import LossFn

Targets = dict[str, torch.Tensor]
# Batch-level augmentation on the device: (x, hard targets) → (x, hard or soft targets), e.g. mixing.
BatchTransform = Callable[[torch.Tensor, Targets], tuple[torch.Tensor, Targets]]


def _to(batch: tuple[torch.Tensor, Targets], hardware: Hardware) -> tuple[torch.Tensor, Targets]:
    x, targets = batch
    device = hardware.device
    return hardware.inputs(x), {h: t.to(device, non_blocking=True) for h, t in targets.items()}


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    scaler: torch.amp.GradScaler,
    hardware: Hardware,
    ema: ModelEma | None = None,
    description: str = "train",
    batch_transform: BatchTransform | None = None,
    progress_bar: bool = True,
) -> dict[str, float]:
    """One pass over `loader`; `ema` follows the weights, `model` may be DDP- or compile-wrapped."""
    model.train()
    total_loss, seen = 0.0, 0
    progress = tqdm(loader, desc=description, leave=False, dynamic_ncols=True, disable=not progress_bar)
    for batch in progress:
        x, targets = _to(batch, hardware)
        if batch_transform is not None:
            x, targets = batch_transform(x, targets)
            x = hardware.inputs(x)  # indexing may have lost channels_last
        with hardware.autocast():
            loss = loss_fn(model(x), targets)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update(model)  # ModelEma unwraps DDP / torch.compile
        total_loss += loss.item() * len(x)
        seen += len(x)
        progress.set_postfix(loss=f"{total_loss / seen:.4f}")
    return {"loss": total_loss / max(seen, 1), "lr": optimizer.param_groups[0]["lr"]}


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, hardware: Hardware) -> tuple[dict, dict]:
    """Logits and targets per head over a whole loader, as numpy arrays."""
    model.eval()
    logits: dict[str, list[np.ndarray]] = {}
    targets: dict[str, list[np.ndarray]] = {}
    for batch in loader:
        x, y = _to(batch, hardware)
        with hardware.autocast():
            out = model(x)
        for head, value in out.items():
            logits.setdefault(head, []).append(value.float().cpu().numpy())
            targets.setdefault(head, []).append(y[head].cpu().numpy())
    return (
        {h: np.concatenate(v) for h, v in logits.items()},
        {h: np.concatenate(v) for h, v in targets.items()},
    )


def topk_accuracy(logits: np.ndarray, target: np.ndarray, k: int) -> float:
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return float((top == target[:, None]).any(axis=1).mean())


def macro_recall(logits: np.ndarray, target: np.ndarray) -> float:
    predicted = logits.argmax(axis=1)
    recalls = [(predicted[target == c] == c).mean() for c in np.unique(target)]
    return float(np.mean(recalls))


def classification_metrics(
    logits: dict[str, np.ndarray], targets: dict[str, np.ndarray], weights: dict[str, float] | None = None
) -> dict[str, float]:
    """Top-1, top-5 and macro recall per head, over the samples that know the head (target ≥ 0),
    and "score": weighted_score with the head weights."""
    metrics: dict[str, float] = {}
    for head, value in logits.items():
        known = targets[head] >= 0
        if not known.any():
            continue
        value, target = value[known], targets[head][known]
        metrics[f"{head}_top1"] = topk_accuracy(value, target, 1)
        metrics[f"{head}_top5"] = topk_accuracy(value, target, 5)
        metrics[f"{head}_macro_recall"] = macro_recall(value, target)
    return metrics | {"score": weighted_score(metrics, weights or {})}


def weighted_score(metrics: dict[str, float], weights: dict[str, float]) -> float:
    """Head-weighted mean of the heads' macro recalls (weight 1 where none is given).

    With weights root 2, vowel 1, consonant 1 this is the Bengali.AI score (2·root + vowel + consonant) / 4.
    """
    suffix = "_macro_recall"
    recalls = {k.removesuffix(suffix): v for k, v in metrics.items() if k.endswith(suffix)}
    total = sum(weights.get(head, 1.0) for head in recalls)
    return sum(weights.get(head, 1.0) * v for head, v in recalls.items()) / total if total else 0.0


def evaluate(
    model: nn.Module, loader: DataLoader, hardware: Hardware, weights: dict[str, float] | None = None
) -> dict[str, float]:
    """classification_metrics of the model over the loader."""
    return classification_metrics(*predict(model, loader, hardware), weights)
