"""A small residual CNN encoder shared by the estimators (FOMM-sized, CPU-fast)."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import Tensor, nn


class ConvBlock(nn.Sequential):
    """3x3 convolution, batch norm, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class DownBlock(nn.Module):
    """Halve the resolution: a strided conv block, then a residual conv block."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.down = ConvBlock(cin, cout, stride=2)
        self.conv = nn.Sequential(
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        y = self.down(x)
        return self.act(y + self.conv(y))


class Encoder(nn.Module):
    """``(B, 3, H, W)`` -> ``(B, C_last * (H / 2^n) * (W / 2^n))`` flattened features.

    A stem conv at ``channels[0]`` (stride ``stem_stride``), then one :class:`DownBlock`
    per further entry of ``channels``. Flattening (rather than pooling) keeps where things
    are, which the keypoint and eye-mesh heads need.
    """

    def __init__(self, channels: tuple[int, ...], stem_stride: int = 2):
        super().__init__()
        self.stem = ConvBlock(3, channels[0], stride=stem_stride)
        self.blocks = nn.Sequential(*[DownBlock(a, b) for a, b in itertools.pairwise(channels)])
        self.stride = stem_stride * 2 ** (len(channels) - 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.stem(x)).flatten(1)


def to_network_input(images: np.ndarray | Tensor) -> Tensor:
    """RGB uint8 ``(B, H, W, 3)`` (or one ``(H, W, 3)``) -> float ``(B, 3, H, W)`` in [-1, 1]."""
    t = torch.as_tensor(images)
    if t.ndim == 3:
        t = t[None]
    return t.permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()


def to_image(tensor: Tensor) -> np.ndarray:
    """Inverse of :func:`to_network_input` for one image: ``(3, H, W)`` in [-1, 1] ->
    ``(H, W, 3)`` uint8 RGB (clipped)."""
    t = tensor.detach().cpu().permute(1, 2, 0).clamp(-1, 1)
    return ((t + 1) * 127.5).round().byte().numpy()
