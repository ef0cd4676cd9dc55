"""Multi-GPU data parallelism (PyTorch DDP) under torchrun, through the same `python -m training train`.

torchrun sets WORLD_SIZE/RANK/LOCAL_RANK/MASTER_ADDR/MASTER_PORT; with WORLD_SIZE > 1 the process group
starts from them (NCCL on CUDA, gloo on CPU). One process per GPU, each on its shard of the training set;
only rank 0 evaluates and writes (checkpoints, metrics, reports, exports). Without torchrun every helper
here is a no-op for one process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def current() -> Rank:
    if not (dist.is_available() and dist.is_initialized()):
        return Rank()
    return Rank(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


@contextmanager
def process_group() -> Iterator[Rank]:
    """Join torchrun's process group for the block when WORLD_SIZE > 1; else one plain process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        yield current()
        return
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    try:
        yield current()
    finally:
        dist.destroy_process_group()


def wrap(model: nn.Module, rank: Rank, device: torch.device) -> nn.Module:
    """DDP around the model when distributed (gradients all-reduced each step); the model itself otherwise."""
    if not rank.distributed:
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def mean_over_ranks(value: float, device: torch.device) -> float:
    if not (dist.is_available() and dist.is_initialized()):
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / dist.get_world_size()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
