"""The canonical mean face shape and head-pose fitting.

The mean shape is the 478-point mesh in head coordinates (geometry's conventions: x to
the face's image right, y down, the face looking along -z), centred on its rigid points
and scaled to a unit distance between the outer eye corners (1 IOD). It is built from
tracked frames by generalised Procrustes analysis (GPA, here; the building itself, which
also calibrates the eyeballs, is :mod:`freehead.perception.mean_shape_build`) and saved
with every dataset labelled with it; the package ships one built from the sample videos.

Head pose of a frame is the similarity ``landmarks ≈ s R mean + t`` fitted on the rigid
points only (forehead, nose, eye corners, temples), so expressions do not tilt it.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from freehead.errors import FreeheadError
from freehead.geometry import Similarity, fit_similarity
from freehead.io_utils import atomic_write_bytes
from freehead.perception.keypoints import (
    EYE_INNER_CORNER,
    EYE_OUTER_CORNER,
    IRIS,
    KEYPOINT_MESH_INDICES,
    KEYPOINT_MIRROR_PAIRS,
    MOUTH_CORNERS,
    NOSE_TIP,
    NUM_LANDMARKS,
    RIGID_MESH_INDICES,
)

_RIGID = torch.tensor(RIGID_MESH_INDICES)


@dataclass(frozen=True)
class MeanShape:
    """The canonical head model.

    ``points``: ``(478, 3)`` float64 in head coordinates, unit outer-eye-corner distance.
    ``eyeball_offset``: ``(2, 3)`` float64, each eyeball's centre minus the midpoint of
    that eye's corners, in head coordinates (see :mod:`freehead.perception.eyes`).
    """

    points: np.ndarray
    eyeball_offset: np.ndarray

    def __post_init__(self) -> None:
        if self.points.shape != (NUM_LANDMARKS, 3) or not np.isfinite(self.points).all():
            raise FreeheadError(
                f"a mean shape must be 478x3 finite values, got {self.points.shape}"
            )
        if self.eyeball_offset.shape != (2, 3) or not np.isfinite(self.eyeball_offset).all():
            raise FreeheadError("a mean shape's eyeball offset must be 2x3 finite values")

    @property
    def digest(self) -> str:
        """A short hash that tells mean shapes apart (recorded in datasets)."""
        h = hashlib.sha256(np.ascontiguousarray(self.points, np.float64).tobytes())
        h.update(np.ascontiguousarray(self.eyeball_offset, np.float64).tobytes())
        return h.hexdigest()[:16]

    def save(self, path: str | Path) -> None:
        buf = io.BytesIO()
        np.savez(
            buf,
            points=self.points.astype(np.float64),
            eyeball_offset=self.eyeball_offset.astype(np.float64),
            format=np.array(1),
        )
        atomic_write_bytes(Path(path), buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> MeanShape:
        try:
            with np.load(Path(path), allow_pickle=False) as f:
                return cls(
                    points=np.asarray(f["points"], np.float64),
                    eyeball_offset=np.asarray(f["eyeball_offset"], np.float64),
                )
        except FreeheadError:
            raise
        except (OSError, KeyError, ValueError) as e:
            raise FreeheadError(f"cannot read a mean shape from {path}: {e}") from e

    @classmethod
    def default(cls) -> MeanShape:
        """The head model shipped with freehead (built from the sample videos' train split;
        the model card in docs/ says how)."""
        ref = resources.files("freehead") / "assets" / "mean_shape.npz"
        with resources.as_file(ref) as p:
            return cls.load(p)


def orient_shape(points: np.ndarray) -> np.ndarray:
    """Put a face shape in head coordinates: centred on the rigid points, x along the
    face's left-right axis (from its mirror pairs), z along the normal of the plane
    through the eye and mouth corners (the nose in front, at -z), and 1 IOD scale.

    ``(478, 3)`` -> ``(478, 3)``.
    """
    p = np.asarray(points, np.float64)
    kp = p[list(KEYPOINT_MESH_INDICES)]
    x = np.mean([kp[b] - kp[a] for a, b in KEYPOINT_MIRROR_PAIRS], axis=0)
    plane = p[[*EYE_OUTER_CORNER, *EYE_INNER_CORNER, *MOUTH_CORNERS]]
    centred = plane - plane.mean(0)
    z = np.linalg.svd(centred)[2][2]
    if np.dot(p[NOSE_TIP] - plane.mean(0), z) > 0:
        z = -z
    x = x - np.dot(x, z) * z
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    basis = np.stack([x, y, z])  # rows: new axes in old coordinates
    out = (p - p[list(RIGID_MESH_INDICES)].mean(0)) @ basis.T
    iod = np.linalg.norm(out[EYE_OUTER_CORNER[1]] - out[EYE_OUTER_CORNER[0]])
    return out / iod


def generalised_procrustes(
    shapes: np.ndarray, iterations: int = 20, tol: float = 1e-9
) -> tuple[np.ndarray, Similarity]:
    """Mean of ``(N, 478, 3)`` tracked faces by generalised Procrustes analysis.

    Every shape is aligned to the current mean by a similarity fitted on the rigid
    points, the mean is recomputed over all 478 points and re-oriented
    (:func:`orient_shape`), until it stops changing. Returns the mean ``(478, 3)`` and
    the similarities that take it to each shape.
    """
    x = torch.as_tensor(np.asarray(shapes, np.float64))
    if x.ndim != 3 or x.shape[1:] != (NUM_LANDMARKS, 3) or x.shape[0] < 2:
        raise FreeheadError(f"GPA needs at least two 478x3 shapes, got {tuple(x.shape)}")
    mean = orient_shape(x[0].numpy())
    for _ in range(iterations):
        target = torch.as_tensor(mean)
        fit = fit_similarity(target[_RIGID].expand(x.shape[0], -1, -1), x[:, _RIGID])
        aligned = fit.invert_points(x)
        new_mean = orient_shape(aligned.mean(0).numpy())
        change = np.abs(new_mean - mean).max()
        mean = new_mean
        if change < tol:
            break
    target = torch.as_tensor(mean)
    return mean, fit_similarity(target[_RIGID].expand(x.shape[0], -1, -1), x[:, _RIGID])


def fit_head_pose(landmarks: torch.Tensor, mean_shape: MeanShape) -> Similarity:
    """Head pose ``landmarks ≈ s R mean + t`` on the rigid points.

    ``landmarks``: ``(..., 478, 3)`` in any frame (pixels or crop coordinates); the
    returned similarity is in that frame. Rotation ``(..., 3, 3)``, translation
    ``(..., 3)``, scale ``(...)`` (the outer-eye-corner distance in that frame's unit).
    """
    mean = torch.as_tensor(mean_shape.points, dtype=landmarks.dtype)
    src = mean[_RIGID].expand(*landmarks.shape[:-2], -1, -1)
    return fit_similarity(src, landmarks[..., _RIGID, :])


def iris_centres(landmarks: torch.Tensor) -> torch.Tensor:
    """Mean of each eye's five iris landmarks. ``(..., 478, 3)`` -> ``(..., 2, 3)``."""
    return torch.stack([landmarks[..., list(idx), :].mean(-2) for idx in IRIS], dim=-2)
