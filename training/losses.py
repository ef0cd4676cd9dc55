"""Losses stay per-sample until the very end, so head weights (and later OHEM/soft targets) compose.

A target of IGNORE (-1) means "this sample does not know this head" (e.g. a real handwritten Bengali
character labelled with its root only): it adds nothing to that head's loss, rather than a false label.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -1


def per_sample_ce(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    return F.cross_entropy(
        logits, target, reduction="none", label_smoothing=label_smoothing, ignore_index=IGNORE
    )


def multi_head_loss(
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    weights: dict[str, float] | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Weighted sum over heads of the per-sample cross-entropy, each head averaged over the samples
    that know it."""
    weights = weights or {}
    total = torch.zeros((), device=next(iter(outputs.values())).device)
    for head, target in targets.items():
        known = (target != IGNORE).sum().clamp(min=1)
        total = (
            total
            + weights.get(head, 1.0) * per_sample_ce(outputs[head], target, label_smoothing).sum() / known
        )
    return total
