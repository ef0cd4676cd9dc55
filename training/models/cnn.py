"""Production CNNs for 1×28×28 character images."""

from __future__ import annotations

import torch
from torch import nn

from training.models.heads import MultiHead
from training.models.registry import register_model


def conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """Pre-activation-free basic block (conv-bn-relu, conv-bn, + shortcut, relu)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(c_in, c_out, stride),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class CharResNet(nn.Module):
    """A small ResNet for 28×28 glyphs: stem, three stages (28→14→7), global pooling, heads."""

    def __init__(
        self,
        heads: dict[str, int],
        widths: tuple[int, ...] = (32, 64, 128),
        blocks: tuple[int, ...] = (1, 1, 1),
        dropout: float = 0.2,
        stem_stride: int = 1,
    ) -> None:
        super().__init__()
        # A stride-2 stem halves the resolution at once: a 64 px input costs about what 32 px did,
        # while the stem still sees the finer strokes.
        layers: list[nn.Module] = [conv_bn(1, widths[0], stride=stem_stride)]
        c_in = widths[0]
        for i, (width, depth) in enumerate(zip(widths, blocks, strict=True)):
            for j in range(depth):
                layers.append(ResidualBlock(c_in, width, stride=2 if (i > 0 and j == 0) else 1))
                c_in = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = MultiHead(c_in, heads, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(self.features(x))


@register_model
def char_resnet(heads: dict[str, int], **kwargs) -> nn.Module:
    return CharResNet(heads, **kwargs)
