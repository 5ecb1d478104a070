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
    found.sort(key=lambda f: -float(np.prod(np.ptp(f[:, :2], axis=0))))
    faces: list[np.ndarray] = []
    for f in found:
        centre, width = f[:, :2].mean(0), float(np.ptp(f[:, 0]))
        if all(np.linalg.norm(centre - g[:, :2].mean(0)) > width / 2 for g in faces):
            faces.append(f)
    if not faces:
        return Detection(landmarks=None, num_faces=0)
    return Detection(landmarks=faces[0], num_faces=len(faces), faces=tuple(faces))
