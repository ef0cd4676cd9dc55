"""Every model ends in named heads, one logits tensor per head (a one-head model is the special case)."""

from __future__ import annotations

import torch
from torch import nn


class MultiHead(nn.Module):
    def __init__(self, in_features: int, heads: dict[str, int], dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({name: nn.Linear(in_features, n) for name, n in heads.items()})

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.dropout(features)
        return {name: head(features) for name, head in self.heads.items()}
