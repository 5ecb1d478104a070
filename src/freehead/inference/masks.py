"""Blending masks for pasting generated pixels back into a frame."""

from __future__ import annotations

import numpy as np

from freehead.perception.keypoints import KEYPOINT_PARTS


def eye_mask(keypoints: np.ndarray, size: int, grow: float = 0.35, feather: float = 0.35):
    """Soft ``(size, size)`` float32 mask of both eye regions of a crop.

    ``keypoints`` ``(K, 2+)`` in crop coordinates. Each eye gets an ellipse around its
    outline, its semi-axes the outline's half-extent plus ``grow`` of the eye's width
    (taking in the lids, which follow the gaze); the mask is 1 inside, falls to 0 over
    the outer ``feather`` of the ellipse's radius, and is exactly 0 outside it, so the
    rest of the frame is untouched.
    """
    kp = (np.asarray(keypoints, np.float64)[:, :2] + 1) * size / 2  # continuous pixels
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    mask = np.zeros((size, size), np.float64)
    for part in ("eye_left", "eye_right"):
        pts = kp[list(KEYPOINT_PARTS[part])]
        lo, hi = pts.min(0), pts.max(0)
        width = max(float(hi[0] - lo[0]), 1.0)
        centre = (lo + hi) / 2
        ax = (hi[0] - lo[0]) / 2 + grow * width
        ay = (hi[1] - lo[1]) / 2 + grow * width
        r = np.sqrt(((xs - centre[0]) / ax) ** 2 + ((ys - centre[1]) / ay) ** 2)
        ramp = np.clip((1.0 - r) / feather, 0.0, 1.0)
        mask = np.maximum(mask, ramp * ramp * (3 - 2 * ramp))
    return mask.astype(np.float32)


def face_mask(
    keypoints: list[np.ndarray],
    size: int,
    grow: float = 0.12,
    feather: float = 0.1,
    raise_brows: float = 1 / 3,
):
    """Soft ``(size, size)`` float32 mask over the face(s) of a crop, for pasting a
    rendered face into a frame while the hair, neck and background stay the frame's own.

    ``keypoints``: one or more ``(K, 2+)`` sets in crop coordinates (e.g. the source's and
    the rendered face's, so the mask covers where the face was and where it is now). The
    union of their hulls (jaw, brows, and the brows raised by a third of the face height,
    which takes in the forehead) is grown by ``grow`` of the face's size and feathered
    over ``feather`` of it.
    """
    import cv2

    hard = np.zeros((size, size), np.uint8)
    extent = 1.0
    for kp in keypoints:
        px = (np.asarray(kp, np.float64)[:, :2] + 1) * size / 2 - 0.5
        face_h = float(np.ptp(px[:, 1]))
        extent = max(extent, face_h, float(np.ptp(px[:, 0])))
        brows = px[17:27] - [0.0, face_h * raise_brows]
        hull = cv2.convexHull(np.concatenate([px, brows]).astype(np.float32))
        cv2.fillConvexPoly(hard, np.round(hull).astype(np.int32), 1)
    grow_px = max(1, round(grow * extent))
    hard = cv2.dilate(hard, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow_px + 1,) * 2))
    sigma = max(0.5, feather * extent / 2)
    return cv2.GaussianBlur(hard.astype(np.float32), (0, 0), sigma)
