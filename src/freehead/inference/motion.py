"""Face motion at inference: what E_can and E_gaze read from a face, how a driver's motion
is put on a source (absolute or relative), pose overrides, and gaze targets.

All quantities are in crop coordinates (see :mod:`freehead.geometry`). Expression is kept
in the head frame (``d_head = R^T d / s``) so that it can be carried to another head pose,
and gaze relative to the head (``R^T g``) so that "gaze transfer" means the eyes turn in
their sockets as the driver's do.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from freehead.errors import FreeheadError
from freehead.geometry import (
    adapt,
    angles_from_gaze,
    angles_from_rotation,
    gaze_from_angles,
    rotation_from_angles,
)


@dataclass(frozen=True)
class FaceMotion:
    """One face's pose, expression and gaze (float64 numpy).

    ``rotation`` ``(3, 3)``, ``translation`` ``(3,)``, ``scale`` float, ``expression``
    ``(K, 3)`` the deformation d in the head frame (``R^T d / s``), ``eye_gaze`` ``(2, 3)``
    unit gaze of each eye relative to the head (``R^T g``; eye 0 = image left).
    """

    rotation: np.ndarray
    translation: np.ndarray
    scale: float
    expression: np.ndarray
    eye_gaze: np.ndarray

    @classmethod
    def from_prediction(cls, prediction, eye_gaze_camera: np.ndarray) -> FaceMotion:
        """From one face's :class:`~freehead.models.keypoints.KeypointPrediction` (batch of 1)
        and its per-eye gaze in the camera frame ``(2, 3)``."""
        r = prediction.rotation[0].double().numpy()
        s = float(prediction.scale[0])
        d = prediction.deformation[0].double().numpy()
        return cls(
            rotation=r,
            translation=prediction.translation[0].double().numpy(),
            scale=s,
            expression=d @ r / s,  # rows: (R^T d_i)^T = d_i^T R
            eye_gaze=np.asarray(eye_gaze_camera, np.float64) @ r,
        )

    # ------------------------------------------------------------------ derived
    @property
    def head_angles(self) -> np.ndarray:
        """(yaw, pitch, roll) in degrees."""
        return angles_from_rotation(torch.from_numpy(self.rotation)).numpy()

    @property
    def gaze_camera(self) -> np.ndarray:
        """Per-eye unit gaze in the camera frame ``(2, 3)``."""
        return self.eye_gaze @ self.rotation.T

    @property
    def gaze_angles(self) -> np.ndarray:
        """Per-eye (pitch, yaw) in degrees, camera frame, ``(2, 2)``."""
        return angles_from_gaze(torch.from_numpy(self.gaze_camera)).numpy()

    def keypoints(self, canonical: np.ndarray) -> np.ndarray:
        """Posed keypoints ``p = s R p_can + t + d`` for canonical keypoints ``(K, 3)``."""
        r = torch.from_numpy(self.rotation)
        d = self.scale * (self.expression @ self.rotation.T)
        return adapt(
            torch.from_numpy(np.asarray(canonical, np.float64)),
            r,
            torch.from_numpy(self.translation),
            torch.tensor(self.scale, dtype=torch.float64),
            torch.from_numpy(d),
        ).numpy()

    # ------------------------------------------------------------------ editing
    def with_angles(
        self, yaw: float | None = None, pitch: float | None = None, roll: float | None = None
    ) -> FaceMotion:
        """The same face with some of its head angles (degrees) replaced; the gaze keeps
        its direction relative to the head."""
        if yaw is None and pitch is None and roll is None:
            return self
        y, p, r = self.head_angles
        rotation = rotation_from_angles(
            torch.tensor(y if yaw is None else yaw, dtype=torch.float64),
            torch.tensor(p if pitch is None else pitch, dtype=torch.float64),
            torch.tensor(r if roll is None else roll, dtype=torch.float64),
        ).numpy()
        return replace(self, rotation=rotation)

    def with_camera_gaze(self, angles: np.ndarray) -> FaceMotion:
        """The same face looking at camera-frame (pitch, yaw) degrees, ``(2,)`` for both
        eyes or ``(2, 2)`` per eye."""
        angles = np.broadcast_to(np.asarray(angles, np.float64), (2, 2))
        g = gaze_from_angles(*torch.from_numpy(angles.copy()).unbind(-1)).numpy()
        return replace(self, eye_gaze=g @ self.rotation)

    # ------------------------------------------------------------ flat vectors
    def to_vector(self) -> np.ndarray:
        """The quantities to smooth, in comparable units (degrees, crop pixels of a 256
        crop): head angles, translation and scale, expression, per-eye gaze angles
        relative to the head."""
        head_gaze = angles_from_gaze(torch.from_numpy(self.eye_gaze)).numpy()
        return np.concatenate(
            [
                self.head_angles,
                self.translation * 128.0,
                [self.scale * 128.0],
                self.expression.reshape(-1) * 128.0,
                head_gaze.reshape(-1),
            ]
        )

    @classmethod
    def from_vector(cls, v: np.ndarray, num_keypoints: int) -> FaceMotion:
        """Inverse of :meth:`to_vector`."""
        k3 = num_keypoints * 3
        angles = torch.from_numpy(v[0:3])
        gaze = v[7 + k3 : 11 + k3].reshape(2, 2)
        return cls(
            rotation=rotation_from_angles(*angles.unbind(-1)).numpy(),
            translation=v[3:6] / 128.0,
            scale=float(v[6] / 128.0),
            expression=v[7 : 7 + k3].reshape(num_keypoints, 3) / 128.0,
            eye_gaze=gaze_from_angles(*torch.from_numpy(gaze.copy()).unbind(-1)).numpy(),
        )


def relative_motion(source: FaceMotion, driver: FaceMotion, driver_first: FaceMotion) -> FaceMotion:
    """The driver's motion since its first frame, put on the source.

    ``R = R_d R_d0^T R_s``, ``t = t_s + (t_d - t_d0)``, ``s = s_s s_d / s_d0``,
    expression ``e_s + (e_d - e_d0)`` (head frame), and the driver's gaze relative to its
    head. A cross-identity source so keeps its own face shape, position and resting
    expression.
    """
    rotation = driver.rotation @ driver_first.rotation.T @ source.rotation
    return FaceMotion(
        rotation=rotation,
        translation=source.translation + driver.translation - driver_first.translation,
        scale=source.scale * driver.scale / driver_first.scale,
        expression=source.expression + driver.expression - driver_first.expression,
        eye_gaze=driver.eye_gaze,
    )


# -------------------------------------------------------------------------- gaze


@dataclass(frozen=True)
class GazeControl:
    """Where the output's eyes look.

    ``mode``: ``"transfer"`` (the driver's gaze, relative to the head), ``"camera"`` (into
    the camera), ``"fixed"`` (``angles`` (pitch, yaw) in degrees, camera frame) or
    ``"path"`` (``path`` ``(N, 3)`` rows of frame, pitch, yaw; linear in between, held
    beyond the ends).
    """

    mode: str = "transfer"
    angles: tuple[float, float] = (0.0, 0.0)
    path: np.ndarray | None = None

    @classmethod
    def parse(cls, text: str) -> GazeControl:
        """``transfer``, ``camera``, ``PITCH,YAW`` (degrees) or a CSV file of
        ``frame,pitch,yaw`` rows (a header line is allowed)."""
        t = text.strip()
        if t in ("transfer", "camera"):
            return cls(mode=t)
        parts = t.split(",")
        if len(parts) == 2:
            try:
                pitch, yaw = float(parts[0]), float(parts[1])
            except ValueError:
                pass
            else:
                _check_angles(pitch, yaw)
                return cls(mode="fixed", angles=(pitch, yaw))
        if t.lower().endswith(".csv"):
            return cls(mode="path", path=read_gaze_path(Path(t)))
        raise FreeheadError(
            f"--gaze {text!r}: expected transfer, camera, PITCH,YAW in degrees or a .csv file"
        )

    def target(self, frame: int) -> np.ndarray | None:
        """Camera-frame (pitch, yaw) ``(2,)`` for a frame index, or None to keep the
        transferred gaze."""
        if self.mode == "transfer":
            return None
        if self.mode == "camera":
            return np.zeros(2)
        if self.mode == "fixed":
            return np.asarray(self.angles, np.float64)
        assert self.path is not None
        f = self.path[:, 0]
        return np.array(
            [np.interp(frame, f, self.path[:, 1]), np.interp(frame, f, self.path[:, 2])]
        )


MAX_GAZE_DEG = 60.0
"""Requested gaze angles beyond this are refused: eyes do not turn that far."""


def _check_angles(pitch: float, yaw: float) -> None:
    if not (np.isfinite(pitch) and np.isfinite(yaw)):
        raise FreeheadError("gaze angles must be finite numbers")
    if abs(pitch) > MAX_GAZE_DEG or abs(yaw) > MAX_GAZE_DEG:
        raise FreeheadError(
            f"gaze ({pitch:g}, {yaw:g}) is beyond ±{MAX_GAZE_DEG:g}°, further than eyes turn"
        )


def read_gaze_path(path: Path) -> np.ndarray:
    """A gaze path file: rows ``frame,pitch,yaw`` -> ``(N, 3)`` sorted by frame."""
    if not path.is_file():
        raise FreeheadError(f"no such gaze path file: {path}")
    rows = []
    try:
        with open(path, newline="") as f:
            for i, row in enumerate(csv.reader(f)):
                if not row or row[0].lstrip().startswith("#"):
                    continue
                try:
                    rows.append([float(v) for v in row[:3]] if len(row) >= 3 else None)
                except ValueError:
                    if i == 0:  # a header
                        continue
                    raise FreeheadError(f"{path}: line {i + 1} is not frame,pitch,yaw") from None
                if rows[-1] is None:
                    raise FreeheadError(f"{path}: line {i + 1} is not frame,pitch,yaw")
    except UnicodeDecodeError:
        raise FreeheadError(f"{path} is not a text CSV file") from None
    if not rows:
        raise FreeheadError(f"{path} holds no frame,pitch,yaw rows")
    table = np.array(rows, np.float64)
    for _, pitch, yaw in table:
        _check_angles(pitch, yaw)
    return table[np.argsort(table[:, 0], kind="stable")]
