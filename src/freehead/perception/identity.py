"""Who a face is: dlib's 128-D face descriptor (a ResNet trained on faces, offline through
the ``dlib-bin`` and ``face-recognition-models`` packages).

Two descriptors closer than :data:`SAME_PERSON` are, by dlib's threshold, the same
person. The evaluation's identity metric and the sample data's split into people both
read faces through :class:`IdentityEncoder`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from freehead.errors import FreeheadError

SAME_PERSON = 0.6
"""dlib's threshold: descriptors closer than this are taken for the same person."""


@dataclass(frozen=True)
class IdentityModels:
    """The two dlib model files the descriptor needs."""

    predictor: Path
    recognition: Path


def identity_model_files() -> IdentityModels:
    """dlib's 68-point shape predictor and face-descriptor network, from the installed
    ``face-recognition-models`` package (found without importing it: it needs
    ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FreeheadError(
            "the identity metric needs the face-recognition-models package "
            "(pip install face-recognition-models)"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "models"
    files = IdentityModels(
        predictor=root / "shape_predictor_68_face_landmarks.dat",
        recognition=root / "dlib_face_recognition_resnet_model_v1.dat",
    )
    for f in (files.predictor, files.recognition):
        if not f.is_file():
            raise FreeheadError(f"face-recognition-models is missing {f.name}")
    return files


Box = tuple[float, float, float, float]
"""(left, top, right, bottom) in pixels."""


class IdentityEncoder:
    """dlib's 128-D face descriptor (ResNet, LFW-trained). Distances under ~0.6 are, by
    dlib's threshold, the same person."""

    def __init__(self) -> None:
        import dlib

        files = identity_model_files()
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(files.predictor))
        self._net = dlib.face_recognition_model_v1(str(files.recognition))
        self._dlib = dlib

    def detect(self, image: np.ndarray, upsample: int = 1) -> list[Box]:
        """dlib's frontal face boxes in an ``(H, W, 3)`` uint8 RGB image."""
        rects = self._detector(np.ascontiguousarray(image), upsample)
        return [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]

    def descriptor(self, image: np.ndarray, box: Box | None = None) -> np.ndarray | None:
        """``(128,)`` descriptor of the largest face in an RGB uint8 image, or None when
        dlib finds none. ``box`` (left, top, right, bottom) in pixels skips detection."""
        image = np.ascontiguousarray(image)
        if box is None:
            boxes = self.detect(image)
            if not boxes:
                return None
            box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        rect = self._dlib.rectangle(*(round(v) for v in box))
        shape = self._predictor(image, rect)
        return np.asarray(self._net.compute_face_descriptor(image, shape), dtype=np.float64)


def identity_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance of two dlib descriptors (lower is more alike)."""
    return float(np.linalg.norm(a - b))
