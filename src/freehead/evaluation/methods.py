"""Reenactment methods behind one small interface, so the suite can score any of them.

A method works on face crops (``(S, S, 3)`` uint8 RGB, as in a dataset): ``reenact`` puts
the driver's pose, expression and gaze on the source's person, ``redirect_gaze`` turns the
source's eyes to a requested (pitch, yaw) in degrees (camera frame, freehead's signs).
``prepare`` is called once per source before any use of it, for methods that cache
source work.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import cv2
import numpy as np


class Method(ABC):
    name: str
    description: str

    def prepare(self, source: np.ndarray) -> None:  # noqa: B027 (optional hook)
        """Per-source work, done once (default: none)."""

    @abstractmethod
    def reenact(self, source: np.ndarray, driver: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def redirect_gaze(self, source: np.ndarray, pitch: float, yaw: float) -> np.ndarray: ...


def jpeg_round_trip(image: np.ndarray, quality: int = 75) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])  # fmt: skip
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


class CopySource(Method):
    name = "copy-source"
    description = "output = the source image: the floor every method must beat"

    def reenact(self, source: np.ndarray, driver: np.ndarray) -> np.ndarray:
        return source.copy()

    def redirect_gaze(self, source: np.ndarray, pitch: float, yaw: float) -> np.ndarray:
        return source.copy()


class Oracle(Method):
    name = "oracle"
    description = (
        "output = the driver re-encoded as JPEG (quality 75): the measurement noise floor; "
        "with no image of the requested gaze, gaze redirection returns the source re-encoded"
    )

    def reenact(self, source: np.ndarray, driver: np.ndarray) -> np.ndarray:
        return jpeg_round_trip(driver)

    def redirect_gaze(self, source: np.ndarray, pitch: float, yaw: float) -> np.ndarray:
        return jpeg_round_trip(source)


METHODS: dict[str, type[Method]] = {"copy-source": CopySource, "oracle": Oracle}
