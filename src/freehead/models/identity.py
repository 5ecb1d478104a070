"""Face identity features for training: HSE FaceRes (1024-D), a MobileNet trained for identity
on VGGFace2, from npm ``@vladmandic/human@3.3.6`` (see ``docs/models.md``).

FaceRes reads a 224² face in 0..255 (an earlier check found AUC 0.83 fed 0..1). Our face crops
frame the face with a wide margin, so :class:`FaceIdentity` reads the central ``face_box``
(0.6 of the crop's side) resized to 224², in BGR order. Both were chosen on the training
people by ``benchmarks/identity_check.py`` (44 faces of 13 people, 946 pairs): every box
from 0.4 to 0.75 gave AUC ≥ 0.996, and BGR separated better than RGB at every box (at 0.6
the largest same-person distance is 0.38, the smallest different-person one 0.45; in RGB
0.43 and 0.425).

It is for training only: the evaluation measures identity with dlib's descriptor, a different
network, so a generator trained on this loss does not optimise the reported figure.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from freehead.models.pretrained import package_folder
from freehead.models.tfjs import read_model_json, read_weights
from freehead.models.tfjs_graph import GraphModule

FEATURES = "global_pooling/Mean"
INPUT_SIZE = 224
FACE_BOX = 0.6
"""The side of the central square read from a face crop, as a fraction of the crop's side."""


class FaceIdentity(nn.Module):
    """Frozen FaceRes features of face crops.

    ``forward`` takes ``(B, 3, H, W)`` RGB crops in [-1, 1] (framed as freehead's dataset crops)
    and returns ``(B, 1024)`` features; gradients flow to the input. ``face_box=1`` reads the
    whole image (used for 224² inputs already cut to the face).
    """

    def __init__(self, folder: Path | None = None, face_box: float = FACE_BOX,
                 fold: bool = True, download: bool = False) -> None:  # fmt: skip
        super().__init__()
        if not 0.0 < face_box <= 1.0:
            raise ValueError(f"face_box {face_box} must be in (0, 1]")
        folder = package_folder("faceres", download) if folder is None else Path(folder)
        model = read_model_json(folder / "faceres.json")
        self.net = GraphModule(model, read_weights(model, folder), [FEATURES], fold=fold)
        self.face_box = face_box
        self.requires_grad_(False)
        self.eval()

    def face(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in [-1, 1] -> the face box, ``(B, 3, 224, 224)`` BGR in 0..255."""
        h, w = images.shape[-2:]
        bh, bw = round(h * self.face_box), round(w * self.face_box)
        top, left = (h - bh) // 2, (w - bw) // 2
        box = images[..., top : top + bh, left : left + bw]
        if (bh, bw) != (INPUT_SIZE, INPUT_SIZE):
            box = F.interpolate(box, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                                align_corners=False, antialias=bh > INPUT_SIZE)  # fmt: skip
        return (box.flip(1) + 1.0) * 127.5

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [-1, 1] -> ``(B, 1024)``."""
        return self.net(self.face(images))[FEATURES]


def identity_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine distance ``(B,)`` between ``(B, D)`` identity features: 0 same, up to 2."""
    return 1.0 - F.cosine_similarity(a, b, dim=1, eps=1e-8)
