"""Keypoint sketches, the generator's conditioning image (Free-HeadGAN §3.3; docs/generator.md).

``draw_sketch`` draws the 68 keypoints' face parts as lines, each part in its own colour,
and fills each eye's outline with a colour that encodes that eye's gaze:

    R = 128 + 127 * clip(pitch / GAZE_RANGE_DEG), G = 128 + 127 * clip(yaw / GAZE_RANGE_DEG),
    B = 255

so (128, 128, 255) is a gaze into the camera. The fill is drawn last, over the inner
half of the eye outlines (white), so that narrow eyes still show their gaze colour. The same function draws the sketches of training pairs (from the
pseudo-labels) and of inference (from E_can and E_gaze): there is no second copy.
"""

from __future__ import annotations

import cv2
import numpy as np

from freehead.perception.keypoints import CLOSED_PARTS, KEYPOINT_PARTS

GAZE_RANGE_DEG = 45.0
"""Gaze angles at which the eye colour saturates."""

PART_COLOURS: dict[str, tuple[int, int, int]] = {
    "jaw": (255, 200, 0),
    "brow_left": (255, 0, 0),
    "brow_right": (0, 255, 0),
    "nose_bridge": (255, 0, 255),
    "nose_base": (160, 0, 255),
    "eye_left": (255, 255, 255),
    "eye_right": (255, 255, 255),
    "lips_outer": (0, 255, 255),
    "lips_inner": (0, 128, 255),
}
"""RGB line colour of each face part."""

EYE_PARTS = ("eye_left", "eye_right")


def gaze_colour(pitch: float, yaw: float) -> tuple[int, int, int]:
    """The RGB fill that encodes a gaze (degrees)."""

    def enc(v: float) -> int:
        return round(128 + 127 * float(np.clip(v / GAZE_RANGE_DEG, -1.0, 1.0)))

    return enc(pitch), enc(yaw), 255


def gaze_from_colour(rgb: np.ndarray) -> tuple[float, float]:
    """Inverse of :func:`gaze_colour` (within the unsaturated range)."""
    r, g = float(rgb[0]), float(rgb[1])
    return (r - 128) / 127 * GAZE_RANGE_DEG, (g - 128) / 127 * GAZE_RANGE_DEG


def draw_sketch(keypoints: np.ndarray, gaze: np.ndarray, size: int) -> np.ndarray:
    """The sketch of one face, ``(size, size, 3)`` uint8 RGB.

    ``keypoints`` ``(68, 2+)`` in crop coordinates ([-1, 1]); ``gaze`` (pitch, yaw) in
    degrees, ``(2,)`` for both eyes or ``(2, 2)`` per eye (eye 0 = image left).
    """
    kp = np.asarray(keypoints, np.float64)[:, :2]
    px = np.round(((kp + 1) * size / 2 - 0.5) * 4).astype(np.int32)  # 2 bits of sub-pixel
    gaze = np.broadcast_to(np.asarray(gaze, np.float64), (2, 2))
    canvas = np.zeros((size, size, 3), np.uint8)
    thickness = max(1, size // 128)
    for part, idx in KEYPOINT_PARTS.items():
        width = max(1, thickness // 2) if part in EYE_PARTS else thickness
        cv2.polylines(canvas, [px[list(idx)]], part in CLOSED_PARTS, PART_COLOURS[part],
                      width, cv2.LINE_AA, shift=2)  # fmt: skip
    # the gaze fill goes last, over the inner edge of the eye outline, so that narrow
    # (half-closed) eyes still show their gaze colour
    for eye, part in enumerate(EYE_PARTS):
        pts = px[list(KEYPOINT_PARTS[part])]
        cv2.fillPoly(canvas, [pts], gaze_colour(*gaze[eye]), cv2.LINE_8, shift=2)
    return canvas
