"""ResNet-34 and SE-ResNeXt-50 (32×4d), the Bengali study's backbones, for 1-channel input.

Written here rather than taken from timm: timm imports torchvision, and the only torchvision wheel
that matches torch 2.13.0 on PyPI is the CUDA build, whose extension fails to load beside the CPU
torch these machines use (pyproject.toml, the `train` extra). Module names, layer shapes and the
initialisation follow timm's `resnet34` / `seresnext50_32x4d`, so a timm state dict (stem made
1-channel, classifier dropped) loads into these with `strict=True`. Random init only: nothing is
ever downloaded.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from training.models.heads import MultiHead
from training.models.registry import register_model


class SEModule(nn.Module):
    """Squeeze-and-excitation (timm's SEModule: 1×1 convs with bias, reduction 16, rounded to 8)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        reduced = max(8, int(channels / 16 + 4) // 8 * 8)
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.bn = nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(reduced, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.act(self.bn(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * self.gate(scale)


def _downsample(c_in: int, c_out: int, stride: int) -> nn.Module | None:
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int, cardinality: int, base_width: int, se: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = SEModule(planes) if se else None
        self.act2 = nn.ReLU(inplace=True)
        self.downsample = _downsample(c_in, planes, stride)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        if self.se is not None:
            out = self.se(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act2(out + shortcut)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int, cardinality: int, base_width: int, se: bool):
        super().__init__()
        width = math.floor(planes * base_width / 64) * cardinality
        c_out = planes * self.expansion
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.se = SEModule(c_out) if se else None
        self.act3 = nn.ReLU(inplace=True)
        self.downsample = _downsample(c_in, c_out, stride)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(self.act2(self.bn2(self.conv2(out)))))
        if self.se is not None:
            out = self.se(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act3(out + shortcut)


class ResNet(nn.Module):
    """timm's ResNet with the default stem (7×7/2 conv, 3×3/2 max-pool): any input side ≥ 1 works, the
    global pooling absorbs the size (28 px reaches layer4 as 1×1)."""

    def __init__(
        self,
        heads: dict[str, int],
        block: type[BasicBlock | Bottleneck],
        layers: tuple[int, ...],
        cardinality: int = 1,
        base_width: int = 64,
        se: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.act1 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c_in = 64
        stages = []
        for i, depth in enumerate(layers):
            planes = 64 * 2**i
            blocks = []
            for j in range(depth):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(block(c_in, planes, stride, cardinality, base_width, se))
                c_in = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages  # timm's names
        self.num_features = c_in
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = MultiHead(c_in, heads, dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, BasicBlock | Bottleneck):
                nn.init.zeros_(m.last_bn().weight)  # timm's zero_init_last: each block starts as identity

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.head(self.pool(x))


@register_model
def resnet34(heads: dict[str, int], dropout: float = 0.0) -> nn.Module:
    return ResNet(heads, BasicBlock, (3, 4, 6, 3), dropout=dropout)


@register_model
def seresnext50_32x4d(heads: dict[str, int], dropout: float = 0.0) -> nn.Module:
    return ResNet(heads, Bottleneck, (3, 4, 6, 3), cardinality=32, base_width=4, se=True, dropout=dropout)
