"""Losses stay per-sample until the very end, so head weights (and later OHEM/soft targets) compose."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def per_sample_ce(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    return F.cross_entropy(logits, target, reduction="none", label_smoothing=label_smoothing)


def multi_head_loss(
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    weights: dict[str, float] | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Weighted sum over heads of per-sample cross-entropy, averaged over the batch last."""
    weights = weights or {}
    per_sample = sum(
        weights.get(head, 1.0) * per_sample_ce(outputs[head], target, label_smoothing)
        for head, target in targets.items()
    )
    return per_sample.mean()  # type: ignore[union-attr]
