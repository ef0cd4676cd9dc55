"""Batch-level CutMix and Mixup with soft targets per head (the Bengali study's mixing).

λ ~ Beta(α, α) (α = 0.4 in the study); with several methods enabled, each batch uses one of them,
each with equal probability. Targets become N×C class masses: λ·own + (1 − λ)·partner.

The IGNORE rule: a sample that does not know a head (target IGNORE) brings no mass to it, so a mixed
row holds only the known part — λ·onehot(own) if only the sample knows the head, (1 − λ)·onehot(partner)
if only its partner does, nothing if neither. No label is ever invented for the unknown part, and the
loss divides by the known mass (training.losses), so a half-known row counts half.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from training.losses import IGNORE

Targets = dict[str, torch.Tensor]


def soft_targets(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Hard class ids → one-hot rows; IGNORE → an all-zero row (no known mass). Soft stays soft."""
    if target.is_floating_point():
        return target
    known = target != IGNORE
    soft = torch.zeros(len(target), num_classes, device=target.device)
    soft[known, target[known]] = 1.0
    return soft


def mix_targets(targets: Targets, heads: dict[str, int], perm: torch.Tensor, lam: float) -> Targets:
    mixed = {}
    for head, target in targets.items():
        soft = soft_targets(target, heads[head])
        mixed[head] = lam * soft + (1.0 - lam) * soft[perm]
    return mixed


def mixup(
    x: torch.Tensor,
    targets: Targets,
    heads: dict[str, int],
    lam: float,
    perm: torch.Tensor,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, Targets]:
    return lam * x + (1.0 - lam) * x[perm], mix_targets(targets, heads, perm, lam)


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A box of area ≈ (1 − λ)·H·W at a uniform centre, clipped to the image: (y0, y1, x0, x1)."""
    cut = math.sqrt(1.0 - lam)
    h, w = int(height * cut), int(width * cut)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    return (
        max(cy - h // 2, 0),
        min(cy + (h - h // 2), height),
        max(cx - w // 2, 0),
        min(cx + (w - w // 2), width),
    )


def cutmix(
    x: torch.Tensor,
    targets: Targets,
    heads: dict[str, int],
    lam: float,
    perm: torch.Tensor,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, Targets]:
    """Paste a box from the partner; the targets weigh the partner by the box's actual (clipped) area."""
    height, width = x.shape[-2:]
    y0, y1, x0, x1 = cutmix_box(height, width, lam, rng)
    out = x.clone()
    out[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
    pasted = (y1 - y0) * (x1 - x0) / (height * width)
    return out, mix_targets(targets, heads, perm, 1.0 - pasted)


MIXES: dict[str, Callable[..., tuple[torch.Tensor, Targets]]] = {"cutmix": cutmix, "mixup": mixup}


class BatchMixer:
    """(x, targets) → (x, soft targets): with probability `p` one of `methods`, chosen uniformly."""

    def __init__(
        self, methods: Sequence[str], heads: dict[str, int], alpha: float = 0.4, p: float = 1.0, seed: int = 0
    ) -> None:
        unknown = set(methods) - set(MIXES)
        if unknown:
            raise KeyError(f"unknown mix {sorted(unknown)}; known: {sorted(MIXES)}")
        self.methods = list(methods)
        self.heads = heads
        self.alpha = alpha
        self.p = p
        self.rng = np.random.default_rng(seed)

    def __call__(self, x: torch.Tensor, targets: Targets) -> tuple[torch.Tensor, Targets]:
        if not self.methods or self.rng.random() >= self.p:
            return x, targets
        method = self.methods[int(self.rng.integers(len(self.methods)))]
        lam = float(self.rng.beta(self.alpha, self.alpha))
        perm = torch.from_numpy(self.rng.permutation(len(x))).to(x.device)
        return MIXES[method](x, targets, self.heads, lam, perm, self.rng)
