"""Pictures of labels, for a person to check them at a glance (``freehead inspect``)."""

from __future__ import annotations

import cv2
import numpy as np

from freehead.perception.keypoints import CLOSED_PARTS, KEYPOINT_PARTS

# Not the sketch's table (freehead.sketch.PART_COLOURS): that one is G's input, fixed by
# the trained G, and in it the brows are red and green and the inner lips (0, 128, 255),
# the colours these overlays give the head's x, y and z axes. These colours are only for
# a person looking at the labels.
LABEL_COLOURS: dict[str, tuple[int, int, int]] = {
    "jaw": (255, 255, 255),
    "brow_left": (255, 200, 0),
    "brow_right": (255, 200, 0),
    "nose_bridge": (0, 220, 255),
    "nose_base": (0, 220, 255),
    "eye_left": (0, 255, 0),
    "eye_right": (0, 255, 0),
    "lips_outer": (255, 80, 80),
    "lips_inner": (255, 80, 180),
}
"""RGB line colour of each face part in the label overlays of :func:`draw_labels`."""
AXIS_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 128, 255))  # head x (red), y (green), z (blue)


def _px(points: np.ndarray, size: int) -> np.ndarray:
    """Crop coordinates ``(..., >=2)`` -> integer pixel positions for OpenCV drawing."""
    return np.round((points[..., :2] + 1) / 2 * size - 0.5).astype(np.int32)


def draw_labels(
    crop: np.ndarray,
    keypoints: np.ndarray,
    rotation: np.ndarray,
    translation: np.ndarray,
    scale: float,
    eyeball_centre: np.ndarray,
    eye_gaze: np.ndarray,
    caption: str = "",
) -> np.ndarray:
    """Draw labels of one frame on a copy of its ``(S, S, 3)`` uint8 RGB crop.

    ``keypoints`` ``(68, 3)``, ``rotation`` ``(3, 3)``, ``translation`` ``(3,)``,
    ``eyeball_centre`` ``(2, 3)`` and ``eye_gaze`` ``(2, 3)`` in crop coordinates.
    Keypoints as lines per face part; head axes from the head origin (x red, y green,
    z blue, each 1 IOD long — z points away from the camera, so for a frontal face it is
    a dot); gaze as yellow arrows from each eyeball centre, 2 IOD long.
    """
    img = np.ascontiguousarray(crop.copy())
    size = img.shape[0]
    thick = max(1, size // 256)
    for part, idx in KEYPOINT_PARTS.items():
        pts = _px(keypoints[list(idx)], size)
        cv2.polylines(img, [pts], part in CLOSED_PARTS, LABEL_COLOURS[part], thick, cv2.LINE_AA)
        for p in pts:
            cv2.circle(
                img, tuple(int(v) for v in p), thick + 1, LABEL_COLOURS[part], -1, cv2.LINE_AA
            )
    origin = _px(translation, size)
    for axis in range(3):
        tip = _px(translation + scale * rotation[:, axis], size)
        cv2.arrowedLine(
            img, tuple(origin), tuple(tip), AXIS_COLOURS[axis], 2 * thick, cv2.LINE_AA, 0, 0.15
        )
    for eye in range(2):
        start = _px(eyeball_centre[eye], size)
        end = _px(eyeball_centre[eye] + 2 * scale * eye_gaze[eye], size)
        cv2.arrowedLine(
            img, tuple(start), tuple(end), (255, 255, 0), 2 * thick, cv2.LINE_AA, 0, 0.2
        )
    if caption:
        img = draw_caption(img, caption)
    return img


def grid(images: list[np.ndarray], columns: int) -> np.ndarray:
    """Tile equal-sized ``(S, S, 3)`` images into rows of ``columns``; blanks fill the end."""
    if not images:
        raise ValueError("no images to tile")
    rows = -(-len(images) // columns)
    blank = np.zeros_like(images[0])
    tiles = images + [blank] * (rows * columns - len(images))
    return np.concatenate(
        [np.concatenate(tiles[r * columns : (r + 1) * columns], axis=1) for r in range(rows)],
        axis=0,
    )


def inspect_clip(dataset_root: str, clip: str, count: int = 16, columns: int = 4) -> np.ndarray:
    """A grid of ``count`` evenly spaced labelled frames of a dataset clip, ``(H, W, 3)`` RGB.

    Each tile says its frame number, head yaw/pitch/roll and gaze pitch/yaw in degrees,
    and any flag (no face, several faces, eyes closed).
    """
    from freehead.data.dataset import Dataset
    from freehead.perception.labels import FLAG_NO_FACE, FLAG_SEVERAL_FACES

    ds = Dataset(dataset_root)
    ds.settings()
    ds.clip(clip)
    labels = ds.labels(clip)
    n = len(labels.flags)
    picks = np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(int))
    tiles = []
    for i in picks:
        crop = ds.frame(clip, int(i))
        if labels.flags[i] == FLAG_NO_FACE:
            tiles.append(draw_caption(crop, f"#{labels.frame_index[i]} no face"))
            continue
        yaw, pitch, roll = labels.head_angles[i]
        gp, gy = labels.gaze[i]
        caption = f"#{labels.frame_index[i]} y{yaw:+.0f} p{pitch:+.0f} r{roll:+.0f}"
        caption += f"\ngaze p{gp:+.0f} y{gy:+.0f}"
        if labels.flags[i] == FLAG_SEVERAL_FACES:
            caption += "\nseveral faces"
        elif not labels.eyes_open[i]:
            caption += "\neyes closed"
        tiles.append(
            draw_labels(
                crop,
                labels.keypoints[i],
                labels.rotation[i],
                labels.translation[i],
                float(labels.scale[i]),
                labels.eyeball_centre[i],
                labels.eye_gaze[i],
                caption,
            )
        )
    return grid(tiles, columns)


def draw_caption(image: np.ndarray, caption: str) -> np.ndarray:
    """A copy of ``image`` with white text on a black outline at its top left."""
    img = np.ascontiguousarray(image.copy())
    thick = max(1, img.shape[0] // 256)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i, line in enumerate(caption.split("\n")):
        org = (4, 14 * (i + 1) * thick)
        cv2.putText(img, line, org, font, 0.4 * thick, (0, 0, 0), 3 * thick, cv2.LINE_AA)
        cv2.putText(img, line, org, font, 0.4 * thick, (255, 255, 255), thick, cv2.LINE_AA)
    return img
