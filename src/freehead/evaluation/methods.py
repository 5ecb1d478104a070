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


class FreeheadMethod(Method):
    """The full freehead path on face crops: E_can and E_gaze on source and driver, the
    driver's motion put on the source's canonical keypoints
    (p = s_d R_d p_can^src + t_d + d_d), gaze-coded sketches, G.

    Source work (analysis, sketch, G's source encoding) is cached per source image.
    """

    name = "freehead"
    description = "E_can + E_gaze + sketch + G (freehead's own models)"

    def __init__(self, generator: str | None = None, keypoints: str | None = None,
                 gaze: str | None = None):  # fmt: skip
        from freehead.models import GazeEstimator, KeypointEstimator
        from freehead.models.generator import Generator

        self.e_can = KeypointEstimator.from_pretrained(keypoints).eval()
        self.e_gaze = GazeEstimator.from_pretrained(gaze).eval()
        self.g = Generator.from_pretrained(generator).eval()
        self._key: bytes | None = None
        self._source: tuple | None = None

    def _analyse(self, crop: np.ndarray):
        """E_can's prediction and per-eye (pitch, yaw) ``(2, 2)`` of one crop."""
        import torch

        from freehead.geometry import angles_from_gaze
        from freehead.models.backbone import to_network_input

        with torch.inference_mode():
            pred = self.e_can(self.e_can.prepare(crop))
            eyes = self.e_gaze.predict(to_network_input(crop), pred.keypoints)
        return pred, angles_from_gaze(eyes.eye_gaze[0]).numpy()

    def _render(self, sketch: np.ndarray) -> np.ndarray:
        import torch

        from freehead.models.backbone import to_network_input

        assert self._source is not None
        with torch.inference_mode():
            out = self.g.render_frame(self._source[2], to_network_input(sketch), 1).image[0]
        return ((out.permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()

    def _crop(self, image: np.ndarray) -> np.ndarray:
        size = self.g.config.image_size
        if image.shape[0] != size:
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        return image

    def prepare(self, source: np.ndarray) -> None:
        import hashlib

        import torch

        from freehead.models.backbone import to_network_input
        from freehead.sketch import draw_sketch

        source = self._crop(source)
        key = hashlib.blake2b(source.tobytes(), digest_size=16).digest()
        if key == self._key:
            return
        pred, angles = self._analyse(source)
        sketch = draw_sketch(pred.keypoints[0].numpy(), angles, source.shape[0])
        with torch.inference_mode():
            features = self.g.encode_sources(
                to_network_input(source)[None], to_network_input(sketch)[None]
            )
        self._key, self._source = key, (pred, angles, features)

    def reenact(self, source: np.ndarray, driver: np.ndarray) -> np.ndarray:
        from freehead.geometry import adapt
        from freehead.sketch import draw_sketch

        self.prepare(source)
        assert self._source is not None
        src = self._source[0]
        drv, angles = self._analyse(self._crop(driver))
        keypoints = adapt(src.canonical, drv.rotation, drv.translation, drv.scale, drv.deformation)
        return self._render(draw_sketch(keypoints[0].numpy(), angles, self.g.config.image_size))

    def redirect_gaze(self, source: np.ndarray, pitch: float, yaw: float) -> np.ndarray:
        from freehead.sketch import draw_sketch

        self.prepare(source)
        assert self._source is not None
        keypoints = self._source[0].keypoints[0].numpy()
        return self._render(
            draw_sketch(keypoints, np.array([pitch, yaw]), self.g.config.image_size)
        )


METHODS: dict[str, type[Method]] = {
    "copy-source": CopySource,
    "oracle": Oracle,
    "freehead": FreeheadMethod,
}
