"""A perceptual distance on ImageNet features: MobileNetV2 (nsfwjs' port) up to ``block_10``.

nsfwjs feeds its networks pixels in [0, 1] and re-estimated its batch-norm statistics for
that range, so images in [-1, 1] (as the generator makes them) are mapped to [0, 1] first.
Blocks 0-10 are ImageNet filters left frozen by nsfwjs' fine-tuning; no layer past
``block_10`` may be used.

The distance is LPIPS-like without learned weights: each layer's features are unit-normalised
over channels at every pixel, differenced, squared, summed over channels and averaged over
space; the layers count equally. The layers are the first and the last rectified feature
maps of the ImageNet part: ``Conv1_relu`` (stride 2, 32 channels: edges and colour, what a
blur or a shift changes) and ``block_10_depthwise_relu`` (stride 16, 384 channels: what a
change of person changes). The layers between read Gaussian noise (sigma 25/255) almost as
far as a change of person (0.79-0.95 of it; the first blocks' depthwise layers up to 2.4),
so with them a noisy copy of a face read farther than another person on 5 of 30 training
crops. This pair was found by measuring layer sets on those crops
(``benchmarks/perceptual_check.py``); on crops held apart from that choice (23 video frames
of the filmed training people) it puts every other person beyond every degradation (the five
layers used before: 14 of 23). Figures and what was tried: ``docs/generator.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from freehead.errors import FreeheadError
from freehead.models.pretrained import mobilenet_v2_folder
from freehead.models.tfjs import KerasGraph, keras_layers, read_model_json, read_weights

LAST_LAYER = "block_10_project_BN"  # the last ImageNet layer; nsfwjs fine-tuned what follows
LAYERS = (
    "Conv1_relu",  # stride 2, 32 channels: the first rectified features
    "block_10_depthwise_relu",  # stride 16, 384: the last rectified ImageNet features
)


class PerceptualFeatures(nn.Module):
    """Frozen MobileNetV2 features of ``(B, 3, H, W)`` images in [-1, 1].

    ``forward`` returns one ``(B, C_l, H / s_l, W / s_l)`` tensor per layer of ``layers``
    (any layers up to ``LAST_LAYER``; the network runs only as far as the deepest of them).
    Gradients flow to the input; the weights are frozen buffers-like parameters.
    """

    def __init__(self, folder: Path | None = None, layers: Sequence[str] = LAYERS,
                 fold: bool = True, download: bool = False) -> None:  # fmt: skip
        super().__init__()
        folder = mobilenet_v2_folder(download) if folder is None else Path(folder)
        model = read_model_json(folder / "model.min.js")
        weights = read_weights(model, folder)
        self.layers = tuple(layers)
        self.net = KerasGraph(model, weights, deepest_layer(model, self.layers), self.layers,
                              fold=fold)  # fmt: skip
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """``(B, 3, H, W)`` in [-1, 1] -> a list of ``(B, C_l, H_l, W_l)`` features."""
        out = self.net((images + 1.0) * 0.5)
        return [out[name] for name in self.layers]


def deepest_layer(model: dict, layers: Sequence[str]) -> str:
    """The deepest of ``layers`` in ``model``'s order; an error for one past ``LAST_LAYER``
    (``LAST_LAYER`` when one is unknown, so that the graph names it)."""
    order = {layer["name"]: i for i, layer in enumerate(keras_layers(model))}
    if not layers or any(name not in order for name in layers):
        return LAST_LAYER
    deepest = max(layers, key=order.__getitem__)
    if order[deepest] > order[LAST_LAYER]:
        raise FreeheadError(f"{deepest} is past {LAST_LAYER}: only blocks 0-10 are ImageNet "
                            "filters in nsfwjs' MobileNetV2")  # fmt: skip
    return deepest


def unit_normalise(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """``(B, C, H, W)`` scaled to unit length over channels at every pixel."""
    return features * torch.rsqrt((features * features).sum(1, keepdim=True) + eps)


def feature_distance(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    """LPIPS-style distance ``(B,)`` between two lists of ``(B, C_l, H_l, W_l)`` features:
    per layer, the spatial mean of the squared difference of the unit-normalised features
    summed over channels; the layers averaged with equal weights."""
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
