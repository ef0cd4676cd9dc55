"""Activations by name, for models whose activation is a study variable (the letters study)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class TanhExp(nn.Module):
    """TanhExp (Liu & Di, 2020): x · tanh(eˣ)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.tanh(torch.exp(x))


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "swish": nn.SiLU,  # swish with β = 1 is SiLU
    "mish": nn.Mish,
    "tanh_exp": TanhExp,
}


def make_activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise KeyError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}") from None
