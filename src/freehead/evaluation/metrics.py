"""Image and face metrics of the field, each on one pair of images.

Images are RGB, ``(H, W, 3)``; pixel metrics take float images in [0, 1] (use
:func:`to_unit`). Measurements that need a face (keypoints, pose, gaze, masks) come from
:func:`measure_faces`, which runs the pseudo-labeller on each image and gives a
:class:`FaceMeasurement` per face; identity from :class:`IdentityEncoder` (dlib's face
descriptor, offline via ``face-recognition-models``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from freehead.perception import identity

if TYPE_CHECKING:
    from freehead.perception.tracker import FaceTracker

PSNR_CAP_DB = 100.0
"""PSNR of identical images is infinite; it is reported as this instead."""


def to_unit(image: np.ndarray) -> np.ndarray:
    """uint8 (or uint16) image -> float64 in [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float64) / 65535.0
    return image.astype(np.float64)


def l1(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of [0, 1] images."""
    return float(np.abs(a - b).mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of [0, 1] images (peak 1), capped at PSNR_CAP_DB."""
    mse = float(((a - b) ** 2).mean())
    if mse <= 10 ** (-PSNR_CAP_DB / 10):
        return PSNR_CAP_DB
    return -10.0 * math.log10(mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004) of [0, 1] images: Gaussian window
    sigma 1.5 (11 x 11), K1 = 0.01, K2 = 0.03, per channel, averaged over the image
    (borders, where the window leaves the image, excluded) and the channels."""
    c1, c2 = 0.01**2, 0.03**2
    a = np.atleast_3d(a).astype(np.float64)
    b = np.atleast_3d(b).astype(np.float64)

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    values = []
    for c in range(a.shape[2]):
        x, y = a[..., c], b[..., c]
        mx, my = blur(x), blur(y)
        vx = blur(x * x) - mx * mx
        vy = blur(y * y) - my * my
        cov = blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        values.append(s[5:-5, 5:-5].mean())
    return float(np.mean(values))


def sharpness(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Variance of the Laplacian of the grey image ([0, 1]) inside ``mask`` (bool (H, W))."""
    grey = np.atleast_3d(image).mean(-1)
    lap = cv2.Laplacian(grey, cv2.CV_64F, ksize=3)
    values = lap[mask] if mask is not None else lap
    return float(values.var())


def sharpness_ratio(output: np.ndarray, reference: np.ndarray, mask: np.ndarray | None) -> float:
    """sharpness(output) / sharpness(reference) in the same region: below 1 is blurrier."""
    return sharpness(output, mask) / max(sharpness(reference, mask), 1e-12)


def outside_change(output: np.ndarray, source: np.ndarray, keep: np.ndarray) -> float:
    """Mean absolute change of [0, 1] images over the pixels where ``keep`` (bool (H, W))
    is False, e.g. outside the eyes after gaze redirection."""
    return float(np.abs(output - source)[~keep].mean())


def keypoint_distance_px(a: np.ndarray, b: np.ndarray) -> float:
    """Mean 2D distance between two sets of points ``(K, 2+)`` in pixels (AKD)."""
    return float(np.linalg.norm(a[:, :2] - b[:, :2], axis=-1).mean())


def angle_between_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two 3D vectors in degrees (:func:`freehead.geometry.angle_between_deg`)."""
    import torch

    from freehead import geometry

    t = [torch.as_tensor(np.asarray(v, np.float64)) for v in (a, b)]
    return float(geometry.angle_between_deg(*t))


def pose_error_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute yaw/pitch/roll difference in degrees (wrapped to [0, 180])."""
    d = (np.asarray(a, np.float64) - np.asarray(b, np.float64) + 180) % 360 - 180
    return float(np.abs(d).mean())


# ------------------------------------------------------------------------- identity


# dlib's descriptor lives in perception (the sample data's people use it too); these
# names stay importable from here.
IdentityEncoder = identity.IdentityEncoder
IdentityModels = identity.IdentityModels
identity_model_files = identity.identity_model_files
identity_distance = identity.identity_distance


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """CSIM: cosine similarity of two identity descriptors (higher is more alike)."""
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


# ---------------------------------------------------------------- face measurements


@dataclass(frozen=True)
class FaceMeasurement:
    """What the pseudo-labeller sees in one image: ``keypoints_px`` ``(68, 2)``,
    ``head_angles`` (yaw, pitch, roll) and ``gaze`` (unit 3-vector, both eyes) in
    degrees / camera frame, ``eyes_open``, ``face_box`` (left, top, right, bottom) px."""

    keypoints_px: np.ndarray
    head_angles: np.ndarray
    gaze: np.ndarray
    eyes_open: bool
    face_box: tuple[float, float, float, float]

    def face_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """Bool ``(H, W)``: inside the hull of the jaw and brows."""
        hull = cv2.convexHull(self.keypoints_px[:27].astype(np.float32)).astype(np.int32)
        mask = np.zeros(shape, np.uint8)
        cv2.fillConvexPoly(mask, hull, 1)
        return mask.astype(bool)

    def eye_mask(self, shape: tuple[int, int], grow: float = 0.6) -> np.ndarray:
        """Bool ``(H, W)``: both eye regions (corner-to-corner boxes grown by ``grow`` of
        the eye's width on every side)."""
        mask = np.zeros(shape, bool)
        for lo, hi in ((36, 42), (42, 48)):
            pts = self.keypoints_px[lo:hi]
            width = float(np.ptp(pts[:, 0]))
            x0, y0 = np.maximum(np.floor(pts.min(0) - grow * width), 0).astype(int)
            x1, y1 = np.maximum(np.ceil(pts.max(0) + grow * width), 0).astype(int)
            mask[y0:y1, x0:x1] = True
        return mask


def measure_faces(
    images: list[np.ndarray], tracker: FaceTracker | None = None
) -> list[FaceMeasurement | None]:
    """Measure each RGB uint8 image on its own (same size); None where no face is found.
    ``tracker``: an open still-image ``FaceTracker`` to reuse (opening one costs ~18 ms)."""
    import torch

    from freehead.geometry import gaze_from_angles
    from freehead.perception.crop import CropConfig, from_crop_coords
    from freehead.perception.labels import label_clip, track_frames
    from freehead.perception.shape import MeanShape

    landmarks, flags, shape = track_frames(
        images, video=False, name="images to measure", tracker=tracker
    )
    found = np.isfinite(landmarks).all(axis=(1, 2))
    if not found.any():
        return [None] * len(images)
    labels = label_clip(landmarks, flags, shape, 25.0, MeanShape.default(), CropConfig(),
                        independent_frames=True)  # fmt: skip
    out: list[FaceMeasurement | None] = []
    for i in range(len(images)):
        if not found[i]:
            out.append(None)
            continue
        kp = from_crop_coords(labels.keypoints[i], labels.box[i])[:, :2]
        lm = landmarks[i, :, :2]
        gaze = gaze_from_angles(*torch.from_numpy(labels.gaze[i].astype(np.float64))).numpy()
        out.append(
            FaceMeasurement(
                keypoints_px=kp.astype(np.float64),
                head_angles=labels.head_angles[i].astype(np.float64),
                gaze=gaze,
                eyes_open=bool(labels.eyes_open[i]),
                face_box=(*lm.min(0).tolist(), *lm.max(0).tolist()),  # type: ignore[arg-type]
            )
        )
    return out


def gaze_in_head(m: FaceMeasurement) -> np.ndarray:
    """A measurement's gaze relative to its head (unit 3-vector, ``R^T g``)."""
    import torch

    from freehead.geometry import rotation_from_angles

    r = rotation_from_angles(*torch.as_tensor(m.head_angles, dtype=torch.float64)).numpy()
    return r.T @ m.gaze


def face_descriptor(encoder: IdentityEncoder, image: np.ndarray,
                    m: FaceMeasurement | None) -> np.ndarray | None:  # fmt: skip
    """dlib's descriptor of the face in ``image``; where dlib's own detector finds none, of
    the face box the labeller measured (``m``). None: no face either way."""
    d = encoder.descriptor(image)
    if d is None and m is not None:
        d = encoder.descriptor(image, m.face_box)
    return d
