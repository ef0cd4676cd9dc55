"""Checkpoints rebuild themselves: model name + kwargs travel with the weights (nanoGPT's habit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.models import create_model


def save_checkpoint(path: Path, **state: Any) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: an interrupted save never leaves a broken checkpoint


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def model_from_checkpoint(checkpoint: dict[str, Any], use_ema: bool = True) -> nn.Module:
    model = create_model(checkpoint["model_name"], **checkpoint["model_kwargs"])
    state = checkpoint.get("ema_state") if use_ema else None
    model.load_state_dict(state or checkpoint["model_state"])
    return model.eval()
