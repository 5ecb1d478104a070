"""E_gaze, the :class:`GazeEstimator`: eye-region patches in, 3D eye meshes out; gaze is
read off the meshes (eyeball centre -> iris centre), never regressed directly.

Why eye patches rather than the face crop: a 5° change of gaze moves the iris by under a
pixel in a 256² face crop (the eyeball's radius is ~8 px there), so the network needs the
eyes at full resolution, and the face crop at full resolution would cost ~20x more.
Each patch is cut along the line through the eye corners (which removes head roll), its
size proportional to the inter-ocular distance (which removes scale), and the second
eye's patch is mirrored, so one set of weights sees two eyes that look alike and every
frame doubles as two samples.

Eye frames. For eye ``e`` with corner midpoint ``m`` (crop coordinates), inter-ocular
distance ``iod`` and eye-line angle ``theta`` (both from the 68 keypoints), a point
``q`` in crop coordinates has local coordinates
``((mirror_e, 1) * Rot(-theta) (q_xy - m_xy), q_z - m_z) / iod`` with ``mirror = +1``
for eye 0 (image left) and ``-1`` for eye 1. Meshes are predicted in these local
coordinates and mapped back exactly; the map is a similarity (a reflection for eye 1),
so gaze directions map with its rotation part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from freehead.checkpoint import load_model
from freehead.geometry import angles_from_gaze, gaze_from_eye_mesh
from freehead.models.backbone import Encoder
from freehead.models.shipped import model_file
from freehead.perception.eyes import TEMPLATE

# 68-keypoint indices of the eye corners: (outer, inner) for eye 0 (image left), eye 1.
EYE_CORNER_KEYPOINTS = ((36, 39), (45, 42))


@dataclass(frozen=True)
class GazeEstimatorConfig:
    """Sizes of E_gaze. A patch is ``patch_width`` x ``patch_height`` pixels covering
    ``patch_width_iod`` inter-ocular distances across."""

    patch_width: int = 48
    patch_height: int = 32
    patch_width_iod: float = 0.6
    channels: tuple[int, ...] = (16, 32, 64, 128)
    hidden: int = 256


@dataclass(frozen=True)
class EyeFrames:
    """Where the eye patches of B faces sit in their crops; all ``(B, 2, ...)``:
    ``centre`` ``(B, 2, 3)``, ``iod`` ``(B, 2)``, ``angle`` ``(B, 2)`` radians."""

    centre: Tensor
    iod: Tensor
    angle: Tensor

    @property
    def mirror(self) -> Tensor:
        return torch.tensor([1.0, -1.0], dtype=self.centre.dtype, device=self.centre.device)

    def _rot(self) -> tuple[Tensor, Tensor]:
        return torch.cos(self.angle), torch.sin(self.angle)

    def to_local(self, points: Tensor) -> Tensor:
        """Crop coordinates -> eye coordinates. ``(B, 2, N, 3)`` -> ``(B, 2, N, 3)``."""
        c, s = (v[..., None] for v in self._rot())
        d = points - self.centre[..., None, :]
        x = c * d[..., 0] + s * d[..., 1]
        y = -s * d[..., 0] + c * d[..., 1]
        x = x * self.mirror[:, None]
        return torch.stack([x, y, d[..., 2]], -1) / self.iod[..., None, None]

    def to_crop(self, points: Tensor) -> Tensor:
        """Eye coordinates -> crop coordinates. ``(B, 2, N, 3)`` -> ``(B, 2, N, 3)``."""
        c, s = (v[..., None] for v in self._rot())
        q = points * self.iod[..., None, None]
        x = q[..., 0] * self.mirror[:, None]
        y = q[..., 1]
        out = torch.stack([c * x - s * y, s * x + c * y, q[..., 2]], -1)
        return out + self.centre[..., None, :]

    def jitter(self, shift: float, scale: float, angle_deg: float, generator=None) -> EyeFrames:
        """Randomly moved frames (training augmentation): centre by up to ``shift`` iod,
        size by a factor in [1 - scale, 1 + scale], angle by up to ``angle_deg``."""

        def u(*shape: int) -> Tensor:
            r = torch.rand(*shape, generator=generator, dtype=self.centre.dtype)
            return (2 * r - 1).to(self.centre.device)

        b = self.centre.shape[0]
        offset = torch.cat(
            [u(b, 2, 2) * shift * self.iod[..., None], self.centre.new_zeros(b, 2, 1)], -1
        )
        return EyeFrames(
            centre=self.centre + offset,
            iod=self.iod * (1 + scale * u(b, 2)),
            angle=self.angle + math.radians(angle_deg) * u(b, 2),
        )


def eye_frames(keypoints: Tensor) -> EyeFrames:
    """The eye frames of faces with 68 keypoints ``(B, 68, 3)`` in crop coordinates."""
    outer = keypoints[:, [EYE_CORNER_KEYPOINTS[0][0], EYE_CORNER_KEYPOINTS[1][0]]]
    inner = keypoints[:, [EYE_CORNER_KEYPOINTS[0][1], EYE_CORNER_KEYPOINTS[1][1]]]
    centre = (outer + inner) / 2  # (B, 2, 3)
    line = outer[:, 1, :2] - outer[:, 0, :2]  # eye 0's outer corner -> eye 1's
    iod = line.norm(dim=-1).clamp_min(1e-6)
    angle = torch.atan2(line[:, 1], line[:, 0])
    return EyeFrames(
        centre=centre, iod=iod[:, None].expand(-1, 2), angle=angle[:, None].expand(-1, 2)
    )


def cut_eye_patches(images: Tensor, frames: EyeFrames, config: GazeEstimatorConfig) -> Tensor:
    """Resample both eye patches of each face.

    images ``(B, 3, H, W)`` (any square size) -> ``(B * 2, 3, patch_height, patch_width)``,
    eye 0 then eye 1 of each face, eye 1 mirrored.
    """
    b = images.shape[0]
    half_w = 0.5 * config.patch_width_iod * frames.iod  # (B, 2)
    half_h = half_w * config.patch_height / config.patch_width
    c, s = torch.cos(frames.angle), torch.sin(frames.angle)
    mirror = frames.mirror
    theta = torch.stack(
        [
            torch.stack([c * half_w * mirror, -s * half_h, frames.centre[..., 0]], -1),
            torch.stack([s * half_w * mirror, c * half_h, frames.centre[..., 1]], -1),
        ],
        -2,
    )  # (B, 2, 2, 3)
    size = (b * 2, images.shape[1], config.patch_height, config.patch_width)
    grid = F.affine_grid(
        theta.reshape(b * 2, 2, 3).to(images.dtype), list(size), align_corners=False
    )
    source = images.repeat_interleave(2, dim=0)
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)


@dataclass(frozen=True)
class GazePrediction:
    """E_gaze's output for B faces (crop coordinates, eye 0 = image left):
    ``meshes`` ``(B, 2, V, 3)``, per-eye unit ``eye_gaze`` ``(B, 2, 3)``."""

    meshes: Tensor
    eye_gaze: Tensor

    @property
    def gaze(self) -> Tensor:
        """Both eyes together: the normalised sum, ``(B, 3)``."""
        g = self.eye_gaze.sum(-2)
        return g / g.norm(dim=-1, keepdim=True).clamp_min(1e-9)

    @property
    def angles(self) -> Tensor:
        """(pitch, yaw) in degrees of :attr:`gaze`, ``(B, 2)``."""
        return angles_from_gaze(self.gaze)


class GazeEstimator(nn.Module):
    """E_gaze. ``forward``: eye patches ``(N, 3, h, w)`` in [-1, 1] -> eye-mesh vertices in
    eye coordinates ``(N, V, 3)``. :meth:`predict` does the whole face."""

    def __init__(self, config: GazeEstimatorConfig = GazeEstimatorConfig()):
        super().__init__()
        self.config = config
        self.num_vertices = TEMPLATE.vertices.shape[0]
        self.encoder = Encoder(config.channels, stem_stride=1)
        s = self.encoder.stride
        features = config.channels[-1] * (config.patch_height // s) * (config.patch_width // s)
        self.trunk = nn.Sequential(nn.Linear(features, config.hidden), nn.ReLU(inplace=True))
        self.vertices = nn.Linear(config.hidden, self.num_vertices * 3)
        nn.init.normal_(self.vertices.weight, std=1e-3)
        nn.init.zeros_(self.vertices.bias)

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> GazeEstimator:
        """Load a model file (``RUN/model.safetensors`` or a training checkpoint); None
        loads the one shipped with freehead."""
        return load_model(
            cls, GazeEstimatorConfig, "gaze", model_file("gaze") if path is None else Path(path)
        )

    @torch.no_grad()
    def set_output_bias(self, mean_vertices: Tensor) -> None:
        """Start from a typical eye mesh ``(V, 3)`` in eye coordinates."""
        self.vertices.bias.copy_(mean_vertices.reshape(-1))

    def forward(self, patches: Tensor) -> Tensor:
        h = self.trunk(self.encoder(patches))
        return self.vertices(h).view(-1, self.num_vertices, 3)

    def predict(self, images: Tensor, keypoints: Tensor) -> GazePrediction:
        """images ``(B, 3, H, W)`` in [-1, 1] (face crops), keypoints ``(B, 68, 3)`` in crop
        coordinates (E_can's, or the tracker's) -> meshes and gaze."""
        frames = eye_frames(keypoints)
        local = self(cut_eye_patches(images, frames, self.config))
        meshes = frames.to_crop(local.view(images.shape[0], 2, self.num_vertices, 3))
        return GazePrediction(meshes=meshes, eye_gaze=gaze_from_eye_mesh(TEMPLATE, meshes))
