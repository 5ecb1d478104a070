"""The critics: D_I, a multi-scale patch critic on (image, sketch), and D_M, a patch
critic on the mouth region cut out with the keypoints (HeadGAN / Free-HeadGAN §3.3).

Each critic returns the activations of every layer; the last is the map of patch scores,
the others feed the feature-matching loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MOUTH_CORNERS = (48, 54)
LIPS = tuple(range(48, 68))


@dataclass(frozen=True)
class CriticConfig:
    """``channels``: widths of the stride-2 layers; ``scales``: D_I runs on the image and
    on ``scales - 1`` halvings of it; ``mouth_size``: side of the mouth crop for D_M,
    which spans ``mouth_width_factor`` mouth widths."""

    channels: tuple[int, ...] = (32, 64, 128)
    scales: int = 2
    mouth_size: int = 64
    mouth_width_factor: float = 2.0
    mouth_channels: tuple[int, ...] = (32, 64, 128)


class PatchCritic(nn.Module):
    """PatchGAN: 4x4 stride-2 convolutions (instance norm after the first), then a 3x3
    convolution to one score per patch."""

    def __init__(self, cin: int, channels: tuple[int, ...]):
        super().__init__()
        layers, prev = [], cin
        for i, c in enumerate(channels):
            norm = nn.InstanceNorm2d(c, affine=True) if i > 0 else nn.Identity()
            layers.append(nn.Sequential(nn.Conv2d(prev, c, 4, 2, 1), norm, nn.LeakyReLU(0.2, True)))
            prev = c
        layers.append(nn.Conv2d(prev, 1, 3, 1, 1))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out


class ImageCritic(nn.Module):
    """D_I: one :class:`PatchCritic` per scale on (image, sketch) ``(B, 6, S, S)``."""

    def __init__(self, config: CriticConfig):
        super().__init__()
        self.critics = nn.ModuleList(PatchCritic(6, config.channels) for _ in range(config.scales))

    def forward(self, image: Tensor, sketch: Tensor) -> list[list[Tensor]]:
        x = torch.cat([image, sketch], 1)
        out = []
        for i, critic in enumerate(self.critics):
            out.append(critic(F.avg_pool2d(x, 2**i) if i else x))
        return out


def mouth_crops(images: Tensor, keypoints: Tensor, size: int, width_factor: float) -> Tensor:
    """Square crops around the lips, differentiable in the images.

    images ``(B, 3, S, S)``; keypoints ``(B, 68, 2+)`` crop coordinates -> ``(B, 3, size, size)``.
    Centre: the lips' mean; side: ``width_factor`` x the mouth-corner distance.
    """
    lips = keypoints[:, list(LIPS), :2]
    centre = lips.mean(1)
    width = (keypoints[:, MOUTH_CORNERS[1], :2] - keypoints[:, MOUTH_CORNERS[0], :2]).norm(dim=-1)
    half = (0.5 * width_factor * width).clamp_min(1e-3)
    zero = torch.zeros_like(half)
    theta = torch.stack(
        [torch.stack([half, zero, centre[:, 0]], -1), torch.stack([zero, half, centre[:, 1]], -1)],
        1,
    )
    grid = F.affine_grid(theta, [images.shape[0], 3, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


class Critics(nn.Module):
    """D_I and D_M together, as the generator's training sees them."""

    def __init__(self, config: CriticConfig = CriticConfig()):
        super().__init__()
        self.config = config
        self.image = ImageCritic(config)
        self.mouth = PatchCritic(3, config.mouth_channels)

    def forward(self, image: Tensor, sketch: Tensor, keypoints: Tensor) -> list[list[Tensor]]:
        """Every critic's layer activations: D_I's scales, then D_M."""
        mouth = mouth_crops(
            image, keypoints, self.config.mouth_size, self.config.mouth_width_factor
        )
        return [*self.image(image, sketch), self.mouth(mouth)]
