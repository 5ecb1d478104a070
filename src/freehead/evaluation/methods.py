"""Reenactment methods behind one small interface, so the suite can score any of them.

A method works on face crops (``(S, S, 3)`` uint8 RGB, as in a dataset): ``reenact`` puts
the driver's pose, expression and gaze on the source's person, ``redirect_gaze`` turns the
source's eyes to a requested (pitch, yaw) in degrees (camera frame, freehead's signs).
``prepare`` is called once per source before any use of it, for methods that cache
source work; ``reenact_many`` takes several sources of one person (N-shot).
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

    def prepare_many(self, sources: list[np.ndarray]) -> None:
        """Per-source work for :meth:`reenact_many` (default: :meth:`prepare` of the first)."""
        self.prepare(sources[0])

    @abstractmethod
    def reenact(self, source: np.ndarray, driver: np.ndarray) -> np.ndarray: ...

    def reenact_many(self, sources: list[np.ndarray], driver: np.ndarray) -> np.ndarray:
        """Reenact from several images of one person (N-shot); methods that cannot use
        more than one take the first."""
        return self.reenact(sources[0], driver)

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

        from freehead.models.backbone import to_image, to_network_input

        assert self._source is not None
        with torch.inference_mode():
            m = self._source[4]
            out = self.g.render_frame(self._source[2], to_network_input(sketch), m).image[0]
        return to_image(out)

    def _crop(self, image: np.ndarray) -> np.ndarray:
        size = self.g.config.image_size
        if image.shape[0] != size:
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        return image

    def prepare(self, source: np.ndarray) -> None:
        self._prepare([source])

    def prepare_many(self, sources: list[np.ndarray]) -> None:
        self._prepare(sources)

    def _prepare(self, sources: list[np.ndarray]) -> None:
        """Analyse, sketch and encode the sources (cached while they stay the same). The
        canonical keypoints are the mean of the sources' p_can."""
        import hashlib

        import torch

        from freehead.models.backbone import to_network_input
        from freehead.sketch import draw_sketch

        crops = [self._crop(s) for s in sources]
        key = hashlib.blake2b(b"".join(c.tobytes() for c in crops), digest_size=16).digest()
        if key == self._key:
            return
        analyses = [self._analyse(c) for c in crops]
        sketches = [draw_sketch(p.keypoints[0].numpy(), a, c.shape[0])
                    for (p, a), c in zip(analyses, crops, strict=True)]  # fmt: skip
        canonical = torch.stack([p.canonical[0] for p, _ in analyses]).mean(0, keepdim=True)
        with torch.inference_mode():
            features = self.g.encode_sources(
                to_network_input(np.stack(crops))[None], to_network_input(np.stack(sketches))[None]
            )
        first, angles = analyses[0]
        self._key, self._source = key, (first, angles, features, canonical, len(crops))

    def reenact(self, source: np.ndarray, driver: np.ndarray) -> np.ndarray:
        return self.reenact_many([source], driver)

    def reenact_many(self, sources: list[np.ndarray], driver: np.ndarray) -> np.ndarray:
        from freehead.geometry import adapt
        from freehead.sketch import draw_sketch

        self._prepare(sources)
        assert self._source is not None
        canonical = self._source[3]
        drv, angles = self._analyse(self._crop(driver))
        keypoints = adapt(canonical, drv.rotation, drv.translation, drv.scale, drv.deformation)
        return self._render(draw_sketch(keypoints[0].numpy(), angles, self.g.config.image_size))

    def redirect_gaze(self, source: np.ndarray, pitch: float, yaw: float) -> np.ndarray:
        from freehead.sketch import draw_sketch

        self._prepare([source])
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
