"""Where and how the model runs: device, mixed precision, memory format, compilation.

CPU: float32, contiguous, eager (no AMP speed-up there without AMX). CUDA: AMP in bfloat16 where the
GPU supports it (no loss scaling needed), float16 with a GradScaler otherwise; channels_last (faster
convolutions on tensor cores); torch.compile when asked (slow first epoch, faster after).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn


@dataclass(frozen=True)
class Hardware:
    device: torch.device
    amp_dtype: torch.dtype | None = None  # None: full precision
    channels_last: bool = False

    def autocast(self) -> AbstractContextManager:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def prepare(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        if not self.channels_last:
            return model
        return model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # (stubs lag)

    @property
    def needs_scaler(self) -> bool:
        """Only float16 underflows without loss scaling."""
        return self.amp_dtype == torch.float16

    def describe(self) -> str:
        precision = str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype else "float32"
        return f"{self.device} {precision}{' channels_last' if self.channels_last else ''}"


def pick_device(local_rank: int = 0) -> torch.device:
    return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")


def select_hardware(amp: bool = True, channels_last: bool = True, local_rank: int = 0) -> Hardware:
    """The device found, with the CUDA-only options where they apply."""
    device = pick_device(local_rank)
    if device.type != "cuda":
        return Hardware(device)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return Hardware(device, dtype if amp else None, channels_last)


def maybe_compile(model: nn.Module, enabled: bool, hardware: Hardware) -> nn.Module:
    """torch.compile on CUDA when asked; eager elsewhere (compiling costs more than it saves on CPU)."""
    if not (enabled and hardware.device.type == "cuda"):
        return model
    return cast(nn.Module, torch.compile(model))  # an OptimizedModule, typed as a plain callable
