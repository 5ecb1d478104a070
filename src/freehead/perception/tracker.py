"""Face tracking with mediapipe's face mesh (478 3D landmarks, irises included).

Landmarks come back in pixels of the input image: x right, y down, z positive away from
the camera in the same pixel unit (mediapipe's normalised z times the image width).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from freehead.io_utils import quiet_native_stderr
from freehead.perception.keypoints import NUM_LANDMARKS

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@dataclass(frozen=True)
class Detection:
    """What the tracker saw in one image.

    ``landmarks``: ``(478, 3)`` float32 pixels of the largest face, or None without a face.
    ``num_faces``: how many faces were found (at most the tracker's ``max_faces``).
    ``faces``: every face's landmarks, largest first (``faces[0]`` is ``landmarks``).
    """

    landmarks: np.ndarray | None
    num_faces: int
    faces: tuple[np.ndarray, ...] = ()


class FaceTracker:
    """mediapipe face mesh with iris refinement, offline on the CPU.

    ``video=True`` tracks from frame to frame (faster, temporally steadier) and expects
    consecutive frames of one video; ``video=False`` treats every image on its own.
    ``max_faces`` > 1 lets it tell a frame with several faces, which datasets flag.
    """

    def __init__(self, video: bool = True, max_faces: int = 2, min_confidence: float = 0.5):
        self.video = video
        with quiet_native_stderr():
            import mediapipe as mp

            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=not video,
                max_num_faces=max_faces,
                refine_landmarks=True,
                min_detection_confidence=min_confidence,
                min_tracking_confidence=min_confidence,
            )
            # The graph loads its models on other threads as it starts; wait for that
            # inside the quiet block by running it once.
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))
        self._warm = False

    def __call__(self, rgb: np.ndarray) -> Detection:
        """Track one ``(H, W, 3)`` uint8 RGB image."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        h, w = rgb.shape[:2]
        if not self._warm:  # the native side logs when it first runs the landmark model
            with quiet_native_stderr():
                result = self._mesh.process(np.ascontiguousarray(rgb))
            self._warm = bool(result.multi_face_landmarks)
        else:
            result = self._mesh.process(np.ascontiguousarray(rgb))
        faces = result.multi_face_landmarks or []
        if not faces:
            return Detection(landmarks=None, num_faces=0)
        arrays = []
        for face in faces:
            a = np.array([(p.x * w, p.y * h, p.z * w) for p in face.landmark], dtype=np.float32)
            if a.shape[0] != NUM_LANDMARKS:
                raise RuntimeError(f"mediapipe returned {a.shape[0]} landmarks, not 478")
            arrays.append(a)
        areas = [float(np.prod(a[:, :2].max(0) - a[:, :2].min(0))) for a in arrays]
        ordered = tuple(arrays[i] for i in np.argsort(areas, kind="stable")[::-1])
        return Detection(landmarks=ordered[0], num_faces=len(arrays), faces=ordered)

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def search_windows(tracker: FaceTracker, image: np.ndarray) -> Detection:
    """Look for faces in overlapping square windows of a still image, for faces too small
    for mediapipe's detector in the whole image (a wide frame, a full-body photo).

    Windows: the image's shorter side and half of it, at half-window steps. Faces found
    in several windows count once (largest first).
    """
    h, w = image.shape[:2]
    side = min(h, w)
    found: list[np.ndarray] = []
    for s in (side, side // 2) if side >= 256 else (side,):
        ys = sorted({*range(0, h - s + 1, s // 2), h - s})
        xs = sorted({*range(0, w - s + 1, s // 2), w - s})
        for y in ys:
            for x in xs:
                det = tracker(np.ascontiguousarray(image[y : y + s, x : x + s]))
                for face in det.faces:
                    found.append(face + np.array([x, y, 0], np.float32))
    return _distinct(found)


MIN_FACE_BOX = 40
"""Detector boxes narrower than this (pixels) are dropped: a face 64 px across its
landmarks has a detector box of about 50, and smaller boxes are mostly false alarms."""
ROI_SCALE = 2.5
"""The face mesh reads a square this many detector boxes wide around each face."""


class FaceDetector:
    """mediapipe's full-range face detector (BlazeFace for faces up to about 5 m away,
    shipped in the wheel), run over the whole image and over overlapping square windows
    (the image's shorter side and half of it, at half-window steps), so that faces of
    64 px in a wide or large photo are found as well as the face mesh's own short-range
    detector finds a selfie's. Call it on an ``(H, W, 3)`` uint8 RGB image for the boxes
    ``(N, 5)``: x, y, width, height (pixels) and score, best score first; a face seen in
    several windows counts once."""

    def __init__(self, min_confidence: float = 0.5):
        with quiet_native_stderr():
            import mediapipe as mp

            self._detector = mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=min_confidence
            )
            self._detector.process(np.zeros((64, 64, 3), np.uint8))

    def _detect(self, rgb: np.ndarray, x: int, y: int) -> list[tuple[float, ...]]:
        h, w = rgb.shape[:2]
        result = self._detector.process(np.ascontiguousarray(rgb))
        boxes = []
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            boxes.append((b.xmin * w + x, b.ymin * h + y, b.width * w, b.height * h,
                          float(d.score[0])))  # fmt: skip
        return boxes

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        side = min(h, w)
        found = self._detect(rgb, 0, 0)
        for s in (side, side // 2) if side >= 256 else (side,):
            for y in sorted({*range(0, h - s + 1, s // 2), h - s}):
                for x in sorted({*range(0, w - s + 1, s // 2), w - s}):
                    found += self._detect(rgb[y : y + s, x : x + s], x, y)
        found.sort(key=lambda b: -b[4])
        kept: list[tuple[float, ...]] = []
        for b in found:
            if b[2] < MIN_FACE_BOX:
                continue
            centre = np.array([b[0] + b[2] / 2, b[1] + b[3] / 2])
            if all(np.linalg.norm(centre - (k[0] + k[2] / 2, k[1] + k[3] / 2)) > max(b[2], k[2]) / 2
                   for k in kept):  # fmt: skip
                kept.append(b)
        return np.array(kept, np.float64).reshape(-1, 5)

    def close(self) -> None:
        self._detector.close()

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def mesh_in_box(tracker: FaceTracker, image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """The face mesh ``(478, 3)`` (image pixels) of the face in ``box`` (x, y, width,
    height), read by ``tracker`` (a still-image one) from the square :data:`ROI_SCALE`
    boxes wide around it; of several faces there, the one nearest the box's centre; None
    when the mesh finds none."""
    h, w = image.shape[:2]
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    half = ROI_SCALE * max(box[2], box[3]) / 2
    x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
    x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    det = tracker(np.ascontiguousarray(image[y0:y1, x0:x1]))
    if not det.faces:
        return None
    faces = [f + np.array([x0, y0, 0], np.float32) for f in det.faces]
    return min(faces, key=lambda f: float(np.linalg.norm(f[:, :2].mean(0) - (cx, cy))))


def find_faces(tracker: FaceTracker, detector: FaceDetector, image: np.ndarray) -> Detection:
    """Every face of a still image, **largest first** (by the area of the landmarks'
    extent), as ``--face-index`` counts: the faces the face mesh finds in the whole image,
    and the mesh (:func:`mesh_in_box`) of each box of the full-range detector that none of
    them covers. ``tracker``: a still-image tracker. ``(H, W, 3)`` uint8 RGB."""
    whole = list(tracker(image).faces)
    found = []
    for box in detector(image):
        centre = box[:2] + box[2:4] / 2
        if any(np.linalg.norm(f[:, :2].mean(0) - centre) < np.ptp(f[:, 0]) / 2 for f in whole):
            continue  # the whole image's mesh has it already
        mesh = mesh_in_box(tracker, image, box)
        if mesh is not None:
            found.append(mesh)
    return _distinct(whole + found)


def _distinct(candidates: list[np.ndarray]) -> Detection:
    """Faces ``(478, 3)`` largest first, dropping any whose centre lies within half its
    own width of a larger one's centre (the same face found twice)."""
    candidates = sorted(candidates, key=lambda f: -float(np.prod(np.ptp(f[:, :2], axis=0))))
    faces: list[np.ndarray] = []
    for f in candidates:
        centre, width = f[:, :2].mean(0), float(np.ptp(f[:, 0]))
        if all(np.linalg.norm(centre - g[:, :2].mean(0)) > width / 2 for g in faces):
            faces.append(f)
    if not faces:
        return Detection(landmarks=None, num_faces=0)
    return Detection(landmarks=faces[0], num_faces=len(faces), faces=tuple(faces))
