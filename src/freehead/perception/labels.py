"""Pseudo-labels of a clip: crops, keypoints, head pose, eyes and gaze, from tracked landmarks.

Everything stored is in crop coordinates (geometry's convention), per frame. Frames
without a face hold NaN; ``flags`` says why (``FLAG_*``).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from freehead.errors import FreeheadError
from freehead.geometry import angle_between_deg, angles_from_gaze, angles_from_rotation
from freehead.io_utils import atomic_write_bytes
from freehead.perception.crop import CropConfig, boxes_from_pose, smooth_boxes, to_crop_coords
from freehead.perception.eyes import OPEN_EYE_THRESHOLD, fit_eyes
from freehead.perception.keypoints import KEYPOINT_MESH_INDICES
from freehead.perception.shape import MeanShape, fit_head_pose

if TYPE_CHECKING:
    from freehead.perception.tracker import FaceTracker

FLAG_OK = 0
FLAG_NO_FACE = 1
FLAG_SEVERAL_FACES = 2
LABELS_FORMAT = 1


def flag_of(num_faces: int) -> int:
    """The frame flag for a frame in which the tracker found ``num_faces`` faces."""
    if num_faces == 0:
        return FLAG_NO_FACE
    return FLAG_SEVERAL_FACES if num_faces > 1 else FLAG_OK


@dataclass(frozen=True)
class LabelSummary:
    """Ranges and quality figures of a clip's labels (``preprocess --json``; docs/data.md).

    Ranges are ``(min, max)`` in degrees and means are over frames with one face (gaze and
    binocular disagreement: with both eyes open too); ``None`` where there is no such
    frame. ``crop_jitter_px`` is the mean frame-to-frame move of the crop centre and
    ``crop_size_px`` the mean crop size, in source pixels.
    """

    frames: int
    frames_with_face: int
    frames_no_face: int
    frames_several_faces: int
    frames_eyes_closed: int
    yaw_range: tuple[float, float] | None
    pitch_range: tuple[float, float] | None
    roll_range: tuple[float, float] | None
    gaze_pitch_range: tuple[float, float] | None
    gaze_yaw_range: tuple[float, float] | None
    binocular_disagreement_deg: float | None
    binocular_disagreement_all_frames_deg: float | None
    crop_jitter_px: float | None
    crop_size_px: float | None


@dataclass(frozen=True)
class ClipLabels:
    """Per-frame labels of one clip (T frames). Shapes:

    frame_index ``(T,)`` int32 — index of the frame in its source;
    flags ``(T,)`` uint8 — FLAG_OK, FLAG_NO_FACE or FLAG_SEVERAL_FACES;
    box ``(T, 3)`` — crop box (cx, cy, size) in source pixels;
    landmarks ``(T, 478, 3)``, keypoints ``(T, 68, 3)`` — crop coordinates;
    rotation ``(T, 3, 3)``, translation ``(T, 3)``, scale ``(T,)`` — head pose, with
    ``landmarks ≈ scale * mean @ rotation.T + translation`` on the rigid points;
    head_angles ``(T, 3)`` — yaw, pitch, roll in degrees;
    eyeball_centre ``(T, 2, 3)``, eyeball_radius ``(T,)``, eye_gaze ``(T, 2, 3)`` — per eye
    (0 = image left), camera frame; gaze ``(T, 2)`` — pitch, yaw in degrees of both eyes
    together, camera frame; eye_openness ``(T, 2)``;
    frame_size ``(2,)`` — source height and width.
    Float arrays are float32.
    """

    frame_index: np.ndarray
    flags: np.ndarray
    box: np.ndarray
    landmarks: np.ndarray
    keypoints: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    scale: np.ndarray
    head_angles: np.ndarray
    eyeball_centre: np.ndarray
    eyeball_radius: np.ndarray
    eye_gaze: np.ndarray
    gaze: np.ndarray
    eye_openness: np.ndarray
    frame_size: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        """``(T,)`` bool: frames fit for training (exactly one face)."""
        return self.flags == FLAG_OK

    @property
    def eyes_open(self) -> np.ndarray:
        """``(T,)`` bool: both eyes open enough for their gaze to mean something."""
        return np.nan_to_num(self.eye_openness.min(-1), nan=0.0) >= OPEN_EYE_THRESHOLD

    def save(self, path: str | Path) -> None:
        buf = io.BytesIO()
        arrays = {f.name: getattr(self, f.name) for f in fields(self)}
        np.savez_compressed(buf, format=np.array(LABELS_FORMAT), **arrays)
        atomic_write_bytes(Path(path), buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> ClipLabels:
        try:
            with np.load(Path(path), allow_pickle=False) as f:
                if int(f["format"]) != LABELS_FORMAT:
                    raise FreeheadError(
                        f"{path}: labels format {int(f['format'])} is not supported"
                    )
                return cls(**{fld.name: f[fld.name] for fld in fields(cls)})
        except FreeheadError:
            raise
        except (OSError, KeyError, ValueError) as e:
            raise FreeheadError(f"cannot read labels from {path}: {e}") from e

    def summary(self) -> LabelSummary:
        """Ranges and quality figures over the valid frames (for ``preprocess --json``)."""
        v = self.valid
        both_open = v & self.eyes_open

        def rng(a: np.ndarray) -> tuple[float, float] | None:
            return (round(float(a.min()), 2), round(float(a.max()), 2)) if a.size else None

        disagreement = angle_between_deg(
            torch.from_numpy(self.eye_gaze[..., 0, :]), torch.from_numpy(self.eye_gaze[..., 1, :])
        ).numpy()
        centre_steps = np.linalg.norm(np.diff(self.box[:, :2], axis=0), axis=1)

        def mean(a: np.ndarray) -> float | None:
            return round(float(a.mean()), 3) if a.size else None

        return LabelSummary(
            frames=len(self.flags),
            frames_with_face=int(v.sum()),
            frames_no_face=int((self.flags == FLAG_NO_FACE).sum()),
            frames_several_faces=int((self.flags == FLAG_SEVERAL_FACES).sum()),
            frames_eyes_closed=int((v & ~self.eyes_open).sum()),
            yaw_range=rng(self.head_angles[v, 0]),
            pitch_range=rng(self.head_angles[v, 1]),
            roll_range=rng(self.head_angles[v, 2]),
            gaze_pitch_range=rng(self.gaze[both_open, 0]),
            gaze_yaw_range=rng(self.gaze[both_open, 1]),
            binocular_disagreement_deg=mean(disagreement[both_open]),
            binocular_disagreement_all_frames_deg=mean(disagreement[v]),
            crop_jitter_px=mean(centre_steps),
            crop_size_px=mean(self.box[:, 2]),
        )


def label_clip(
    landmarks_px: np.ndarray,
    flags: np.ndarray,
    frame_size: tuple[int, int],
    fps: float,
    mean_shape: MeanShape,
    crop: CropConfig,
    frame_index: np.ndarray | None = None,
    independent_frames: bool = False,
) -> ClipLabels:
    """Label a tracked clip (or, with ``independent_frames``, unrelated images: no crop
    smoothing and no eyeball centres shared between them).

    ``landmarks_px`` ``(T, 478, 3)`` source pixels, NaN where no face was found;
    ``flags`` ``(T,)`` as in ClipLabels. Frames with several faces still get labels of the
    largest face (their crops follow it) but stay flagged.
    """
    t_len = len(flags)
    has_face = np.isfinite(landmarks_px).all(axis=(1, 2))
    if not has_face.any():
        raise FreeheadError("no face found in any frame")
    lm_px = torch.from_numpy(landmarks_px[has_face].astype(np.float64))
    boxes = np.full((t_len, 3), np.nan)
    boxes[has_face] = boxes_from_pose(fit_head_pose(lm_px, mean_shape), crop)
    seconds = 0.0 if independent_frames else crop.smooth_seconds
    boxes = smooth_boxes(boxes, has_face, fps, seconds)

    lm = to_crop_coords(lm_px, torch.from_numpy(boxes[has_face]))
    pose = fit_head_pose(lm, mean_shape)
    eyes = fit_eyes(
        lm,
        pose,
        mean_shape,
        valid=torch.from_numpy(flags[has_face] == FLAG_OK),
        independent_frames=independent_frames,
    )

    def per_frame(values: torch.Tensor) -> np.ndarray:
        out = np.full((t_len, *values.shape[1:]), np.nan, dtype=np.float32)
        out[has_face] = values.numpy()
        return out

    return ClipLabels(
        frame_index=(np.arange(t_len) if frame_index is None else frame_index).astype(np.int32),
        flags=flags.astype(np.uint8),
        box=boxes.astype(np.float32),
        landmarks=per_frame(lm),
        keypoints=per_frame(lm[:, list(KEYPOINT_MESH_INDICES)]),
        rotation=per_frame(pose.rotation),
        translation=per_frame(pose.translation),
        scale=per_frame(pose.scale),
        head_angles=per_frame(angles_from_rotation(pose.rotation)),
        eyeball_centre=per_frame(eyes.centres),
        eyeball_radius=per_frame(eyes.radius),
        eye_gaze=per_frame(eyes.gaze),
        gaze=per_frame(angles_from_gaze(eyes.combined_gaze())),
        eye_openness=per_frame(eyes.openness),
        frame_size=np.asarray(frame_size, dtype=np.int32),
    )


def track_frames(
    frames: Iterable[np.ndarray],
    video: bool,
    name: str = "input",
    progress: Callable[[int], None] | None = None,
    tracker: FaceTracker | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Track ``(H, W, 3)`` uint8 RGB frames of one size (consecutive frames of a video when
    ``video``). Returns landmarks ``(T, 478, 3)`` in pixels (NaN without a face), flags
    ``(T,)`` and the frame size (H, W); ``name`` goes into error messages. ``tracker``: an
    open tracker to use (and leave open) instead of a new one; it must be a still-image
    tracker when ``video`` is False, so that no frame depends on the ones before."""
    from freehead.perception.tracker import FaceTracker as Tracker

    nan = np.full((478, 3), np.nan, np.float32)
    landmarks: list[np.ndarray] = []
    flags: list[int] = []
    shape: tuple[int, int] | None = None
    owned = tracker is None
    if tracker is None:
        tracker = Tracker(video=video)
    elif tracker.video != video:
        raise ValueError(f"a {'video' if tracker.video else 'still-image'} tracker was given")
    try:
        for rgb in frames:
            if shape is None:
                shape = rgb.shape[:2]
            elif rgb.shape[:2] != shape:
                raise FreeheadError(f"{name}: frames change size mid-clip")
            det = tracker(rgb)
            landmarks.append(nan if det.landmarks is None else det.landmarks)
            flags.append(flag_of(det.num_faces))
            if progress is not None:
                progress(1)
    finally:
        if owned:
            tracker.close()
    if shape is None:
        raise FreeheadError(f"{name} has no frames")
    return np.stack(landmarks), np.array(flags, np.uint8), shape


def label_images(
    images: list[np.ndarray],
    mean_shape: MeanShape | None = None,
    crop: CropConfig | None = None,
    video: bool = False,
    fps: float = 25.0,
) -> ClipLabels:
    """Track and label ``(H, W, 3)`` uint8 RGB images of one size (consecutive frames of a
    video when ``video``; otherwise each on its own, with no smoothing between them)."""
    if not images:
        raise FreeheadError("no images to label")
    landmarks, flags, shape = track_frames(images, video, "images")
    return label_clip(
        landmarks,
        flags,
        shape,
        fps,
        mean_shape or MeanShape.default(),
        crop or CropConfig(),
        independent_frames=not video,
    )


def portrait_crop(image: np.ndarray, size: int) -> np.ndarray | None:
    """A full image's face crop at ``size``², cut as a dataset's crops are (None: no face)."""
    from freehead.perception.crop import crop_image

    labels = label_images([image])
    if not bool(labels.valid[0]):
        return None
    return crop_image(image, labels.box[0], size)
