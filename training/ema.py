"""Exponential moving average of weights, with warm-up so short runs are not dominated by the init."""

from __future__ import annotations

import copy

import torch
from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside torch.compile's and DDP's wrappers (their state-dict keys are prefixed)."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


class ModelEma:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).eval()
        self.decay = decay
        self.steps = 0
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        model = unwrap(model)
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for ema_value, value in zip(
            self.module.state_dict().values(), model.state_dict().values(), strict=True
        ):
            if ema_value.dtype.is_floating_point:
                ema_value.lerp_(value, 1.0 - decay)
            else:
                ema_value.copy_(value)  # BatchNorm's step counter
