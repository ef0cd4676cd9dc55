"""Multi-layer perceptrons: the letters study (activation × width) and the seed's digit MLP."""

from __future__ import annotations

import torch
from torch import nn

from training.models.activations import make_activation
from training.models.heads import MultiHead
from training.models.registry import register_model


class MLP(nn.Module):
    """Flattened 1×S×S canvas → hidden layers → heads. `input_size` is S (the canvas side)."""

    def __init__(
        self,
        heads: dict[str, int],
        hidden: tuple[int, ...] = (512, 256, 128),
        activation: str = "relu",
        input_size: int = 28,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        layers: list[nn.Module] = [nn.Flatten()]
        width = input_size * input_size
        for size in hidden:
            layers += [nn.Linear(width, size), make_activation(activation)]
            width = size
        self.features = nn.Sequential(*layers)
        self.head = MultiHead(width, heads, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"MLP built for {self.input_size}² inputs got {tuple(x.shape[-2:])}")
        return self.head(self.features(x))


@register_model
def mlp(heads: dict[str, int], **kwargs) -> nn.Module:
    return MLP(heads, **kwargs)


@register_model
def digit_mlp(heads: dict[str, int], input_size: int = 28) -> nn.Module:
    """The seed's digit MLP 784-128-64-10 (109,386 parameters for 10 classes on 28×28)."""
    return MLP(heads, hidden=(128, 64), activation="relu", input_size=input_size)
