"""From a full frame to what the networks need: track the face, fit the head pose, cut the
crop the way the training crops were cut, and read it with E_can and E_gaze.

``FaceReader`` is the per-frame perception of inference. For a video it tracks from frame
to frame, keeps following the chosen face when there are several, and smooths the crop
box causally (so a live stream works the same). ``CropReader`` reads images that already
are aligned face crops (a dataset's, or VoxCeleb-style clips): no tracking, the whole
image is the crop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from freehead.errors import FreeheadError
from freehead.inference.motion import FaceMotion
from freehead.inference.networks import FaceNetworks
from freehead.inference.smoothing import OneEuroFilter, SmoothingConfig
from freehead.perception.crop import CropConfig, boxes_from_pose, crop_image
from freehead.perception.shape import MeanShape, fit_head_pose
from freehead.perception.tracker import (
    Detection,
    FaceDetector,
    FaceTracker,
    find_faces,
    mesh_in_box,
)

log = logging.getLogger(__name__)

MAX_FACES = 4
"""At most this many faces are followed by a video's tracker (every face of a still or of
a video's first frame is found, with the full-range detector)."""


@dataclass(frozen=True)
class FaceReading:
    """One face in one frame.

    ``box`` ``(3,)`` the crop (cx, cy, side) in frame pixels; ``crop`` ``(S, S, 3)`` uint8;
    ``keypoints`` ``(K, 3)`` E_can's p in crop coordinates; ``canonical`` ``(K, 3)``
    p_can; ``motion`` pose, expression and gaze; ``num_faces`` faces in the frame;
    ``landmarks`` ``(478, 3)`` the tracker's face mesh in crop pixels (the first pixel's
    outer edge at 0; None where the face was not tracked); ``frame_shape`` the (H, W) the box
    was cut from, None for an aligned crop, which is all image
    (:func:`~freehead.perception.crop.crop_coverage` gives where a cut crop is black for
    want of the frame).
    """

    box: np.ndarray
    crop: np.ndarray
    keypoints: np.ndarray
    canonical: np.ndarray
    motion: FaceMotion
    num_faces: int
    landmarks: np.ndarray | None = None
    frame_shape: tuple[int, int] | None = None


class FaceReader:
    """Reads faces with the tracker, the pose fit and the estimators.

    ``video``: consecutive frames of one video (tracking; causal smoothing of the crop box
    at ``fps`` with ``smoothing``); otherwise every image on its own. ``face_index``:
    which face when there are several, 0 = the largest (by landmark extent; the full-range
    detector finds faces of 64 px in a group photo); in a video the face chosen in the
    first frame with a face is followed by position.
    """

    def __init__(
        self,
        networks: FaceNetworks,
        video: bool,
        face_index: int = 0,
        fps: float = 25.0,
        smoothing: SmoothingConfig | None = None,
        max_faces: int = MAX_FACES,
        name: str = "input",
    ):
        if face_index < 0:
            raise FreeheadError("the face index must be >= 0")
        self.networks = networks
        self.crop_size = networks.size
        self.video = video
        self.face_index = face_index
        self.name = name
        self.mean_shape = MeanShape.default()
        self.crop_config = CropConfig()
        self._max_faces = max(max_faces, face_index + 1)
        self._tracker: FaceTracker | None = None  # a video's, once it has chosen its face
        self._still: FaceTracker | None = None  # stills, and a video until its first face
        self._detector: FaceDetector | None = None
        self._first_count = 1
        self._box_filter = OneEuroFilter(fps, smoothing or SmoothingConfig()) if video else None
        self._box_unit: float | None = None
        self._previous: np.ndarray | None = None
        self._warned_faces = False
        self.last_count = 0
        """Faces found in the last frame read."""
        self.last_faces: tuple[np.ndarray, ...] = ()
        """Every face of the last image searched whole (``(478, 3)`` each, largest first)."""

    # ------------------------------------------------------------------ tracking
    def _still_tracker(self) -> FaceTracker:
        if self._still is None:
            self._still = FaceTracker(video=False, max_faces=self._max_faces)
            self._detector = FaceDetector()
        return self._still

    def _find(self, frame: np.ndarray) -> Detection:
        """Every face of ``frame``, largest first (:func:`find_faces`)."""
        tracker = self._still_tracker()
        assert self._detector is not None
        return find_faces(tracker, self._detector, frame)

    def _choose(self, faces: tuple[np.ndarray, ...]) -> np.ndarray | None:
        if self.face_index >= len(faces):
            return None
        if len(faces) > 1 and not self._warned_faces:
            which = "the largest" if self.face_index == 0 else f"face {self.face_index}"
            log.warning(
                "%s has %d faces; using %s (--face-index chooses: 0 = largest)",
                self.name, len(faces), which,
            )  # fmt: skip
            self._warned_faces = True
        return faces[self.face_index]

    def _follow(self, frame: np.ndarray) -> tuple[np.ndarray | None, int]:
        """A video's chosen face in a later frame: the video tracker's face nearest where
        it was; when none is within half a face width of it (a face too small or far for
        the tracker's detector), the face mesh of the square around where it was; failing
        that (a cut, a face back elsewhere), the tracker's nearest face, if any."""
        assert self._previous is not None
        if self._tracker is None:
            self._tracker = FaceTracker(video=True, max_faces=min(self._first_count, MAX_FACES))
        det = self._tracker(frame)
        centre, width = self._previous[:, :2].mean(0), float(np.ptp(self._previous[:, 0]))
        by_distance = sorted(
            det.faces, key=lambda f: float(np.linalg.norm(f[:, :2].mean(0) - centre))
        )
        if by_distance and np.linalg.norm(by_distance[0][:, :2].mean(0) - centre) < width / 2:
            return by_distance[0], det.num_faces
        low, high = self._previous[:, :2].min(0), self._previous[:, :2].max(0)
        found = mesh_in_box(self._still_tracker(), frame, np.array([*low, *(high - low)]))
        if found is not None:
            return found, max(det.num_faces, 1)
        return (by_distance[0] if by_distance else None), det.num_faces

    def landmarks(self, frame: np.ndarray) -> tuple[np.ndarray | None, int]:
        """The chosen face's ``(478, 3)`` landmarks (None: no face) and the face count.
        A still, and a video until its first face, are searched whole (every face, with
        the full-range detector); a video then follows the face it chose."""
        if self.video and self._previous is not None:
            chosen, count = self._follow(frame)
        else:
            det = self._find(frame)
            self.last_faces = det.faces
            chosen, count = self._choose(det.faces), det.num_faces
            self._first_count = max(count, 1)
        self.last_count = count
        if chosen is not None:
            self._previous = chosen
        return chosen, count

    def box(self, landmarks: np.ndarray) -> np.ndarray:
        """The crop box of a face, ``(3,)``, smoothed over time in a video."""
        pose = fit_head_pose(torch.from_numpy(landmarks[None].astype(np.float64)), self.mean_shape)
        box = boxes_from_pose(pose, self.crop_config)[0]
        if self._box_filter is None:
            return box
        if self._box_unit is None:
            self._box_unit = self.crop_size / box[2]
        return self._box_filter(box * self._box_unit) / self._box_unit

    # ------------------------------------------------------------------ reading
    def __call__(self, frame: np.ndarray) -> FaceReading | None:
        """Read the chosen face of one ``(H, W, 3)`` uint8 RGB frame (None: no face)."""
        clock = self.networks.clock
        with clock.stage("tracking"):
            landmarks, count = self.landmarks(frame)
        if landmarks is None:
            return None
        with clock.stage("crop"):
            box = self.box(landmarks)
            crop = crop_image(frame, box, self.crop_size)
        read = self.networks.read_crop(crop)
        mesh = crop_landmarks(landmarks, box, self.crop_size)
        return FaceReading(box, crop, read.keypoints, read.canonical, read.motion, count, mesh,
                           frame.shape[:2])  # fmt: skip

    def close(self) -> None:
        for part in (self._tracker, self._still, self._detector):
            if part is not None:
                part.close()
        self._tracker = self._still = self._detector = None

    def __enter__(self) -> FaceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe_faces(faces: tuple[np.ndarray, ...], separator: str = "; ") -> str:
    """The faces ``(478, 3)`` each, largest first, as ``--face-index`` numbers them: "0: 120
    px wide at (412, 230); 1: ..." (the landmarks' width and centre in image pixels)."""
    return separator.join(
        f"{i}: {np.ptp(f[:, 0]):.0f} px wide at ({f[:, 0].mean():.0f}, {f[:, 1].mean():.0f})"
        for i, f in enumerate(faces)
    )


def crop_landmarks(landmarks: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Frame-pixel landmarks ``(N, 3)`` in the pixels of the ``size``² crop of ``box``
    ``(3,)`` (cx, cy, side): ``(N, 3)``, z scaled as x and y."""
    scale = size / float(box[2])
    corner = np.array([box[0] - box[2] / 2, box[1] - box[2] / 2, 0.0])
    return (np.asarray(landmarks, np.float64) - corner) * scale


class CropReader:
    """Reads images that are aligned face crops, as a dataset's crops are: the image is
    resized to the networks' crop side when it differs (area filter) and read whole; its
    box is the whole image. Same calls as :class:`FaceReader`. When the networks need the
    face mesh (G v2) the crop is also tracked, as a still."""

    last_count = 1

    def __init__(self, networks: FaceNetworks, name: str = "input"):
        self.networks = networks
        self.name = name
        self._tracker: FaceTracker | None = None

    def _mesh(self, crop: np.ndarray) -> np.ndarray:
        if self._tracker is None:
            self._tracker = FaceTracker(video=False)
        with self.networks.clock.stage("tracking"):
            found = self._tracker(crop).landmarks
        if found is None:
            raise FreeheadError(f"no face mesh found in {self.name}")
        return found

    def __call__(self, image: np.ndarray) -> FaceReading:
        h, w = image.shape[:2]
        if h != w:
            raise FreeheadError(f"{self.name} is {w}x{h}: an aligned face crop is square")
        size = self.networks.size
        crop = image
        if h != size:
            with self.networks.clock.stage("crop"):
                crop = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        read = self.networks.read_crop(crop)
        box = np.array([w / 2, h / 2, w], np.float64)
        mesh = self._mesh(crop) if self.networks.needs_mesh else None
        return FaceReading(box, crop, read.keypoints, read.canonical, read.motion, 1, mesh)

    def close(self) -> None:
        if self._tracker is not None:
            self._tracker.close()
            self._tracker = None

    def __enter__(self) -> CropReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
