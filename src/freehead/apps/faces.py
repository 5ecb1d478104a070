"""``freehead faces``: every face of an image, numbered as ``--face-index`` counts them
(0 = the largest), listed and drawn as numbered boxes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from freehead.apps.video import check_output, write_image
from freehead.errors import FreeheadError
from freehead.inference.faces import MAX_FACES, describe_faces
from freehead.media import IMAGE_EXTENSIONS, read_image
from freehead.perception.tracker import FaceDetector, FaceTracker, find_faces


@dataclass(frozen=True)
class FacesReport:
    """What ``freehead faces`` found: ``count`` faces, ``text`` (one per index, as
    :func:`~freehead.inference.faces.describe_faces` says them) and the picture written
    (``picture``; None without ``--out``)."""

    count: int
    text: str
    picture: str | None

    def summary(self) -> str:
        """What ``freehead faces`` prints."""
        drawn = f"\nwrote {self.picture}" if self.picture else ""
        return f"{self.count} face(s), by --face-index:\n{self.text}{drawn}"


def faces_in(image: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every face of an ``(H, W, 3)`` uint8 RGB image, ``(478, 3)`` landmarks each,
    largest first: what the inference commands choose from (the same search as
    :class:`~freehead.inference.faces.FaceReader` runs on a still)."""
    with FaceTracker(video=False, max_faces=MAX_FACES) as tracker, FaceDetector() as detector:
        return find_faces(tracker, detector, image).faces


def draw_faces(image: np.ndarray, faces: tuple[np.ndarray, ...]) -> np.ndarray:
    """``image`` with a numbered box around each face's landmarks. ``(H, W, 3)`` uint8."""
    out = np.ascontiguousarray(image.copy())
    thick = max(2, round(max(image.shape[:2]) / 400))
    for i, face in enumerate(faces):
        (x0, y0), (x1, y1) = face[:, :2].min(0).astype(int), face[:, :2].max(0).astype(int)
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 255, 0), thick)
        scale = max(0.6, (x1 - x0) / 80)
        cv2.putText(out, str(i), (x0, max(0, y0 - 2 * thick)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 255, 0), thick, cv2.LINE_AA)  # fmt: skip
    return out


def show_faces(path: str | Path, out: str | Path | None = None,
               overwrite: bool = False) -> FacesReport:  # fmt: skip
    """Find every face of the image at ``path``; with ``out``, draw them there."""
    target = check_output(out, IMAGE_EXTENSIONS, overwrite, [path]) if out is not None else None
    image = read_image(path)
    faces = faces_in(image)
    if not faces:
        raise FreeheadError(f"no face found in {path}")
    if target is not None:
        write_image(target, draw_faces(image, faces))
    text = describe_faces(faces, separator="\n")
    return FacesReport(len(faces), text, None if target is None else str(target))
