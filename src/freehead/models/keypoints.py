"""E_can, the :class:`KeypointEstimator`: a face crop in; 3D keypoints, head pose and
expression deformations out. Canonical keypoints are computed from them (Free-HeadGAN
Eq. 1), never predicted.

All outputs are in crop coordinates (see :mod:`freehead.geometry`): ``p = s R p_can + t + d``
with ``p_can`` in head units (1 = the outer eye-corner distance of the mean face).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from freehead.checkpoint import load_model
from freehead.geometry import canonicalise, rotation_from_6d, rotation_to_6d
from freehead.models.backbone import Encoder, to_network_input
from freehead.models.shipped import model_file
from freehead.perception.keypoints import NUM_KEYPOINTS


@dataclass(frozen=True)
class KeypointEstimatorConfig:
    """Sizes of E_can. ``input_size``: the crop is resized to this side before the network."""

    num_keypoints: int = NUM_KEYPOINTS
    input_size: int = 128
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    hidden: int = 256


@dataclass(frozen=True)
class KeypointPrediction:
    """E_can's output for B crops.

    keypoints p ``(B, K, 3)``, rotation R ``(B, 3, 3)``, translation t ``(B, 3)``,
    scale s ``(B,)``, deformation d ``(B, K, 3)``; all crop coordinates.
    """

    keypoints: Tensor
    rotation: Tensor
    translation: Tensor
    scale: Tensor
    deformation: Tensor

    @property
    def canonical(self) -> Tensor:
        """p_can = R^-1 (p - d - t) / s, ``(B, K, 3)`` in head units."""
        return canonicalise(
            self.keypoints, self.rotation, self.translation, self.scale, self.deformation
        )


class KeypointEstimator(nn.Module):
    """E_can. ``forward``: images ``(B, 3, S, S)`` in [-1, 1], S = ``config.input_size``."""

    def __init__(self, config: KeypointEstimatorConfig = KeypointEstimatorConfig()):
        super().__init__()
        self.config = config
        k = config.num_keypoints
        self.encoder = Encoder(config.channels)
        side = config.input_size // self.encoder.stride
        self.trunk = nn.Sequential(
            nn.Linear(config.channels[-1] * side * side, config.hidden), nn.ReLU(inplace=True)
        )
        self.keypoints = nn.Linear(config.hidden, k * 3)
        self.rotation = nn.Linear(config.hidden, 6)
        self.translation = nn.Linear(config.hidden, 3)
        self.log_scale = nn.Linear(config.hidden, 1)
        self.deformation = nn.Linear(config.hidden, k * 3)
        for head in (self.keypoints, self.rotation, self.translation, self.log_scale):
            nn.init.normal_(head.weight, std=1e-3)
        nn.init.normal_(self.deformation.weight, std=1e-4)
        nn.init.zeros_(self.deformation.bias)
        self.set_output_bias(torch.zeros(k, 3), torch.eye(3), torch.zeros(3), torch.tensor(0.5))

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> KeypointEstimator:
        """Load a model file (``RUN/model.safetensors`` or a training checkpoint); None
        loads the one shipped with freehead."""
        return load_model(
            cls,
            KeypointEstimatorConfig,
            "keypoints",
            model_file("keypoints") if path is None else Path(path),
        )

    @torch.no_grad()
    def set_output_bias(
        self, keypoints: Tensor, rotation: Tensor, translation: Tensor, scale: Tensor
    ) -> None:
        """Start the heads at a typical answer (e.g. the training set's mean), so training
        begins from a sensible face. keypoints ``(K, 3)``, rotation ``(3, 3)``,
        translation ``(3,)``, scale ``()``."""
        self.keypoints.bias.copy_(keypoints.reshape(-1))
        self.rotation.bias.copy_(rotation_to_6d(rotation))
        self.translation.bias.copy_(translation)
        self.log_scale.bias.copy_(torch.log(torch.as_tensor(scale)).reshape(1))

    def forward(self, images: Tensor) -> KeypointPrediction:
        b = images.shape[0]
        k = self.config.num_keypoints
        h = self.trunk(self.encoder(images))
        return KeypointPrediction(
            keypoints=self.keypoints(h).view(b, k, 3),
            rotation=rotation_from_6d(self.rotation(h)),
            translation=self.translation(h),
            scale=self.log_scale(h).squeeze(-1).exp(),
            deformation=self.deformation(h).view(b, k, 3),
        )

    def prepare(self, crops: np.ndarray) -> Tensor:
        """Face crops, RGB uint8 ``(B, H, W, 3)`` or ``(H, W, 3)`` of any square size ->
        network input ``(B, 3, S, S)``. Training and inference both go through here."""
        return prepare_crops(crops, self.config.input_size)


def prepare_crops(crops: np.ndarray, size: int, as_tensor: bool = True) -> Tensor | np.ndarray:
    """Resize square RGB uint8 crops ``(B, H, W, 3)`` or ``(H, W, 3)`` to ``size`` (area
    filter when shrinking) and, unless ``as_tensor`` is False, scale them to [-1, 1]
    as ``(B, 3, size, size)``."""
    crops = np.asarray(crops)
    if crops.ndim == 3:
        crops = crops[None]
    if crops.shape[1] != size or crops.shape[2] != size:
        interp = cv2.INTER_AREA if crops.shape[1] > size else cv2.INTER_LINEAR
        crops = np.stack([cv2.resize(c, (size, size), interpolation=interp) for c in crops])
    return to_network_input(crops) if as_tensor else crops
