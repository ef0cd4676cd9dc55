"""The study's 3-layer CNN (closed set) and the writer-embedding net with its ArcFace loss (open set)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from training.models import create_model


class WriterCNN3(nn.Module):
    """Three conv + max-pool stages, then two dense layers and the writer logits: the IAM study's
    network (113×113 crops; the first conv strides 2 there). On 28×28 characters `first_stride` 1."""

    def __init__(
        self, n_writers: int, input_size: int = 113, first_stride: int = 2, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 5, stride=first_stride, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, 1, input_size, input_size)).shape[1]
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(flat, 512),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(512, 256),
            nn.ReLU(inplace=True),
            nn.Linear(256, n_writers),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class WriterEmbeddingNet(nn.Module):
    """A character CNN trunk from the model zoo (its pooled features), then a linear projection to
    `dim`, L2-normalised: images of one writer's hand should point the same way."""

    def __init__(
        self, dim: int = 128, trunk: str = "char_resnet", input_size: int = 28, **trunk_kwargs
    ) -> None:
        super().__init__()
        self.trunk = create_model(trunk, heads={"unused": 2}, **trunk_kwargs).features
        with torch.no_grad():
            width = self.trunk(torch.zeros(1, 1, input_size, input_size)).shape[1]
        self.project = nn.Sequential(nn.Linear(width, dim), nn.BatchNorm1d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.project(self.trunk(x)), dim=1)


class ArcFace(nn.Module):
    """Additive angular margin (Deng et al. 2019): logits s·cos(θ + m) for the true writer, s·cos θ
    for the others, so a writer's embeddings gather within a margin of its class centre."""

    def __init__(self, dim: int, n_classes: int, scale: float = 30.0, margin: float = 0.3) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_classes, dim))
        nn.init.xavier_uniform_(self.weight)
        self.scale, self.margin = scale, margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = F.linear(embeddings, F.normalize(self.weight)).clamp(-1 + 1e-7, 1 - 1e-7)
        theta = torch.acos(cosine)
        # Past π − m the margin would turn cos back up; fall back to a linear penalty there.
        target = torch.where(
            theta < math.pi - self.margin,
            torch.cos(theta + self.margin),
            cosine - self.margin * math.sin(self.margin),
        )
        one_hot = F.one_hot(labels, cosine.shape[1]).bool()
        return self.scale * torch.where(one_hot, target, cosine)
