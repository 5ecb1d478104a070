"""The canonical mean face shape and head-pose fitting.

The mean shape is the 478-point mesh in head coordinates (geometry's conventions: x to
the face's image right, y down, the face looking along -z), centred on its rigid points
and scaled to a unit distance between the outer eye corners (1 IOD). It is built from
tracked frames by generalised Procrustes analysis (GPA) and saved with every dataset
labelled with it; the package ships one built from the sample videos.

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


def build_mean_shape(shapes: np.ndarray, looks_at_camera: np.ndarray | None = None) -> MeanShape:
    """The head model from ``(N, 478, 3)`` tracked faces (pixels of their frames).

    GPA gives the shape, with yaw and roll zero at the face's mirror symmetry. Two
    things the landmarks cannot tell are set from the frames marked ``looks_at_camera``
    ``(N,)`` (default: all), taking their subjects to face and look into the camera on
    average: zero pitch is their median head pitch, and the eyeball offsets (mirror
    symmetric between the eyes) are the least-squares ones that put the eyeball centres
    behind the irises, i.e. make their gaze point into the camera.
    """
    from freehead.geometry import angles_from_rotation, rotation_from_angles

    x = np.asarray(shapes, np.float64)
    calib = np.ones(len(x), bool) if looks_at_camera is None else np.asarray(looks_at_camera)
    if calib.sum() < 2:
        raise FreeheadError("need at least two frames that look into the camera")
    mean, fit = generalised_procrustes(x)
    pitch = float(np.median(angles_from_rotation(fit.rotation[calib])[:, 1].numpy()))
    q = rotation_from_angles(torch.tensor(0.0), torch.tensor(pitch), torch.tensor(0.0))
    mean = mean @ q.numpy().astype(np.float64).T
    pose = fit_head_pose(torch.as_tensor(x[calib]), MeanShape(mean, np.zeros((2, 3))))
    return MeanShape(points=mean, eyeball_offset=_calibrate_eyeballs(x[calib], pose))


def _calibrate_eyeballs(landmarks: np.ndarray, pose: Similarity) -> np.ndarray:
    """Least-squares eyeball offsets (see :func:`build_mean_shape`). -> ``(2, 3)``.

    The offset of eye 0 (image left) is ``(-a, b, depth)`` and of eye 1 ``(a, b, depth)``;
    looking into the camera, an eyeball centre projects onto its iris centre, which is
    linear in (a, b).
    """
    from freehead.perception.eyes import EYEBALL_DEPTH_IOD, corner_midpoints

    lm = torch.as_tensor(landmarks)
    mids = corner_midpoints(pose.invert_points(lm)).median(dim=0).values  # (2, 3)
    sr = pose.scale[:, None, None] * pose.rotation  # (N, 3, 3)
    rows, rhs = [], []
    for eye, sign in ((0, -1.0), (1, 1.0)):
        base = mids[eye] + torch.tensor([0.0, 0.0, EYEBALL_DEPTH_IOD], dtype=mids.dtype)
        centre0 = sr @ base + pose.translation  # (N, 3): the centre when a = b = 0
        iris = iris_centres(lm)[:, eye, :2]
        rows.append(torch.stack([sign * sr[:, :2, 0], sr[:, :2, 1]], dim=-1).reshape(-1, 2))
        rhs.append((iris - centre0[:, :2]).reshape(-1))
    ab = torch.linalg.lstsq(torch.cat(rows), torch.cat(rhs)[:, None]).solution[:, 0]
    a, b = float(ab[0]), float(ab[1])
    return np.array([[-a, b, EYEBALL_DEPTH_IOD], [a, b, EYEBALL_DEPTH_IOD]])


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


def mean_shape_from_sources(
    paths: list[str],
    looks_at_camera: list[str] | None = None,
    stride: int = 4,
    max_frames: int | None = None,
) -> tuple[MeanShape, int]:
    """Track ``paths`` (videos, frame folders, images) and build the head model from every
    ``stride``-th frame that holds exactly one face (:func:`build_mean_shape`).

    ``looks_at_camera`` lists the paths whose subjects face and look into the camera on
    average (default: all). Returns the model and the number of frames it was built from.
    """
    from freehead.media import open_frames
    from freehead.perception.labels import FLAG_OK, track_frames

    calib_paths = set(paths if looks_at_camera is None else looks_at_camera)
    unknown = calib_paths - set(paths)
    if unknown:
        raise FreeheadError(f"{sorted(unknown)[0]} is not one of the inputs")
    shapes, calib = [], []
    for path in paths:
        frames = open_frames(path)
        landmarks, flags, _ = track_frames(frames.frames(max_frames), frames.kind != "image", path)
        keep = landmarks[::stride][flags[::stride] == FLAG_OK]
        shapes.extend(keep)
        calib.extend([path in calib_paths] * len(keep))
    if len(shapes) < 2:
        raise FreeheadError("need at least two frames with one face to build a mean shape")
    return build_mean_shape(np.stack(shapes), np.array(calib)), len(shapes)
