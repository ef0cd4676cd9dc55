"""The seed study's two small digit CNNs, layer for layer (valid 5×5 convolutions, 2×2 max-pooling).

For 10 classes on 28×28: SimpleCNN has 80,202 parameters, LeNet-5 44,426. Both flatten a fixed
feature map, so they take the canvas side they were built for (`input_size`, ≥ 16).
"""

from __future__ import annotations

import torch
from torch import nn

from training.models.heads import MultiHead
from training.models.registry import register_model


def _flat_side(input_size: int) -> int:
    """Side of the feature map after conv5 → pool2 → conv5 → pool2."""
    side = ((input_size - 4) // 2 - 4) // 2
    if side < 1:
        raise ValueError(f"input_size {input_size} is too small for two 5×5 conv + pool stages")
    return side


def conv_pool_stages(first: int, second: int) -> list[nn.Module]:
    """The seeds' two stages: conv 5×5 → ReLU → max-pool 2, twice, then flatten."""
    return [
        nn.Conv2d(1, first, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(first, second, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    ]


class SimpleCNN(nn.Module):
    """conv(1,16,5)-pool-conv(16,32,5)-pool-fc(32·4·4,128)-heads."""

    def __init__(self, heads: dict[str, int], input_size: int = 28) -> None:
        super().__init__()
        side = _flat_side(input_size)
        self.features = nn.Sequential(
            *conv_pool_stages(16, 32),
            nn.Linear(32 * side * side, 128),
            nn.ReLU(),
        )
        self.head = MultiHead(128, heads)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(self.features(x))


class LeNet5(nn.Module):
    """conv(1,6,5)-pool-conv(6,16,5)-pool-fc(16·4·4,120)-fc(120,84)-heads (ReLU, max-pooling)."""

    def __init__(self, heads: dict[str, int], input_size: int = 28) -> None:
        super().__init__()
        side = _flat_side(input_size)
        self.features = nn.Sequential(
            *conv_pool_stages(6, 16),
            nn.Linear(16 * side * side, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
        )
        self.head = MultiHead(84, heads)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(self.features(x))


@register_model
def simple_cnn(heads: dict[str, int], **kwargs) -> nn.Module:
    return SimpleCNN(heads, **kwargs)


@register_model
def lenet5(heads: dict[str, int], **kwargs) -> nn.Module:
    return LeNet5(heads, **kwargs)
