"""Face motion at inference: what E_can and E_gaze read from a face, how a driver's motion
is put on a source (absolute or relative), and pose overrides.

All quantities are in crop coordinates (see :mod:`freehead.geometry`). Expression is kept
in the head frame (``d_head = R^T d / s``) so that it can be carried to another head pose,
and gaze relative to the head (``R^T g``) so that "gaze transfer" means the eyes turn in
their sockets as the driver's do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

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
