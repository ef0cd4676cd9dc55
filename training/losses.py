"""Losses stay per-sample until the very end, so head weights, soft targets and OHEM compose.

A head's target is either hard (N class ids) or soft (N×C class masses, from Mixup/CutMix). A hard
target of IGNORE (-1) means "this sample does not know this head" (e.g. a real handwritten Bengali
character labelled with its root only): it adds nothing to that head's loss, rather than a false label.
A soft row carries only the *known* mass (training.mixing), so it sums to the sample's known-ness in
[0, 1]: a head's loss is Σ per-sample loss / Σ known mass, which for hard targets is exactly the mean
over the samples that know the head.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

IGNORE = -1

# (per-sample losses, per-sample known mass) → the head's scalar loss
Reduction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LossFn = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor]], torch.Tensor]


def per_sample_ce(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    return F.cross_entropy(
        logits, target, reduction="none", label_smoothing=label_smoothing, ignore_index=IGNORE
    )


def per_sample_soft_ce(
    logits: torch.Tensor, soft: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """-Σ_c t_c log p_c with the smoothing spread over each row's own mass, as F.cross_entropy does."""
    mass = soft.sum(1, keepdim=True)
    soft = (1.0 - label_smoothing) * soft + label_smoothing * mass / soft.shape[1]
    return -(soft * F.log_softmax(logits.float(), dim=1)).sum(1)


def per_sample_loss(
    logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample cross-entropy and known mass, for a hard or a soft target."""
    if target.is_floating_point():
        return per_sample_soft_ce(logits, target, label_smoothing), target.sum(1)
    return per_sample_ce(logits, target, label_smoothing), (target != IGNORE).float()


def mean_over_known(loss: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
    return loss.sum() / mass.sum().clamp(min=1e-6)  # no known sample: 0, not NaN


def ohem(loss: torch.Tensor, mass: torch.Tensor, rate: float = 0.5) -> torch.Tensor:
    """Online hard example mining: the mean over the hardest `rate` of the samples that know the head."""
    known = mass > 0
    keep = max(1, int(rate * int(known.sum())))  # int(): the seed's (argus-bengali-ai) rounding
    hardest = torch.where(known, loss, torch.full_like(loss, -torch.inf)).topk(keep).indices
    return mean_over_known(loss[hardest], mass[hardest])


def multi_head_loss(
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    weights: dict[str, float] | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = mean_over_known,
) -> torch.Tensor:
    """Weighted sum over heads of the reduced per-sample cross-entropy."""
    weights = weights or {}
    total = torch.zeros((), device=next(iter(outputs.values())).device)
    for head, target in targets.items():
        loss, mass = per_sample_loss(outputs[head], target, label_smoothing)
        total = total + weights.get(head, 1.0) * reduction(loss, mass)
    return total


REDUCTIONS: dict[str, Callable[..., Reduction]] = {
    "ce": lambda rate: mean_over_known,
    "ohem": lambda rate: partial(ohem, rate=rate),
}


def make_loss(
    name: str, weights: dict[str, float], label_smoothing: float = 0.0, ohem_rate: float = 0.5
) -> LossFn:
    """`ce` (mean over known samples) or `ohem` (mean over the hardest `ohem_rate` of them)."""
    if name not in REDUCTIONS:
        raise KeyError(f"unknown loss {name!r}; known: {sorted(REDUCTIONS)}")
    return partial(
        multi_head_loss,
        weights=weights,
        label_smoothing=label_smoothing,
        reduction=REDUCTIONS[name](ohem_rate),
    )
