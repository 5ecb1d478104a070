"""Building the mean shape (the head model of :mod:`freehead.perception.shape`) from
tracked faces, and the job that tracks videos for it (``freehead mean-shape``).

It sits above the shape, eye and label modules, which it uses: the head model's eyeball
offsets are calibrated with the eye model (:mod:`freehead.perception.eyes`), and the job
tracks its inputs as preprocessing does (:mod:`freehead.perception.labels`).
"""

from __future__ import annotations

import numpy as np
import torch

from freehead.errors import FreeheadError
from freehead.geometry import Similarity, angles_from_rotation, rotation_from_angles
from freehead.media import open_frames
from freehead.perception.eyes import EYEBALL_DEPTH_IOD, corner_midpoints
from freehead.perception.labels import FLAG_OK, track_frames
from freehead.perception.shape import (
    MeanShape,
    fit_head_pose,
    generalised_procrustes,
    iris_centres,
)


def build_mean_shape(shapes: np.ndarray, looks_at_camera: np.ndarray | None = None) -> MeanShape:
    """The head model from ``(N, 478, 3)`` tracked faces (pixels of their frames).

    GPA gives the shape, with yaw and roll zero at the face's mirror symmetry. Two
    things the landmarks cannot tell are set from the frames marked ``looks_at_camera``
    ``(N,)`` (default: all), taking their subjects to face and look into the camera on
    average: zero pitch is their median head pitch, and the eyeball offsets (mirror
    symmetric between the eyes) are the least-squares ones that put the eyeball centres
    behind the irises, i.e. make their gaze point into the camera.
    """
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
