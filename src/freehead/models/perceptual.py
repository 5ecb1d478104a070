"""A perceptual distance on ImageNet features: MobileNetV2 (nsfwjs' port) up to ``block_10``.

nsfwjs feeds its networks pixels in [0, 1] and re-estimated its batch-norm statistics for
that range, so images in [-1, 1] (as the generator makes them) are mapped to [0, 1] first.
Blocks 0-10 are ImageNet filters left frozen by nsfwjs' fine-tuning.

The distance is LPIPS-like without learned weights: each layer's features are unit-normalised
over channels, differenced, squared, summed over channels and averaged over space; the layers
count equally.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from freehead.models.pretrained import mobilenet_v2_folder
from freehead.models.tfjs import KerasGraph, read_model_json, read_weights

LAST_LAYER = "block_10_project_BN"
LAYERS = (
    "Conv1_relu",  # stride 2, 32 channels
    "block_3_expand_relu",  # stride 4, 144
    "block_6_expand_relu",  # stride 8, 192
    "block_10_expand_relu",  # stride 16, 384
    LAST_LAYER,  # stride 16, 96
)


class PerceptualFeatures(nn.Module):
    """Frozen MobileNetV2 features of ``(B, 3, H, W)`` images in [-1, 1].

    ``forward`` returns one ``(B, C_l, H / s_l, W / s_l)`` tensor per layer of ``layers``.
    Gradients flow to the input; the weights are frozen buffers-like parameters.
    """

    def __init__(self, folder: Path | None = None, layers: Sequence[str] = LAYERS,
                 fold: bool = True, download: bool = False) -> None:  # fmt: skip
        super().__init__()
        folder = mobilenet_v2_folder(download) if folder is None else Path(folder)
        model = read_model_json(folder / "model.min.js")
        weights = read_weights(model, folder)
        self.layers = tuple(layers)
        self.net = KerasGraph(model, weights, LAST_LAYER, self.layers, fold=fold)
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """``(B, 3, H, W)`` in [-1, 1] -> a list of ``(B, C_l, H_l, W_l)`` features."""
        out = self.net((images + 1.0) * 0.5)
        return [out[name] for name in self.layers]


def unit_normalise(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """``(B, C, H, W)`` scaled to unit length over channels at every pixel."""
    return features * torch.rsqrt((features * features).sum(1, keepdim=True) + eps)


def feature_distance(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    """LPIPS-style distance ``(B,)`` between two lists of ``(B, C_l, H_l, W_l)`` features."""
    total = a[0].new_zeros(a[0].shape[0])
    for fa, fb in zip(a, b, strict=True):
        diff = unit_normalise(fa) - unit_normalise(fb)
        total = total + (diff * diff).sum(1).mean((1, 2))
    return total / len(a)


class PerceptualDistance(nn.Module):
    """``forward(x, y)``: the distance ``(B,)`` between ``(B, 3, H, W)`` images in [-1, 1];
    ``y``'s features are computed without a graph unless ``y`` needs gradients."""

    def __init__(self, features: PerceptualFeatures | None = None) -> None:
        super().__init__()
        self.features = PerceptualFeatures() if features is None else features

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)``, ``(B, 3, H, W)`` -> ``(B,)``."""
        if y.requires_grad:
            return feature_distance(self.features(x), self.features(y))
        with torch.no_grad():
            fy = self.features(y)
        return feature_distance(self.features(x), fy)
