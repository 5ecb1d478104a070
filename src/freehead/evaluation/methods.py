"""Reenactment methods behind one small interface, so the suite can score any of them.

A method works on face crops (``(S, S, 3)`` uint8 RGB, as in a dataset): ``reenact`` puts
the driver's pose, expression and gaze on the source's person, ``redirect_gaze`` turns the
source's eyes to a requested (pitch, yaw) in degrees (camera frame, freehead's signs).
``prepare`` is called once per source (one or several images of one person, N-shot)
before any use of it, for methods that cache source work.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import cv2
import numpy as np


class Method(ABC):
    name: str
    description: str

    def prepare(self, sources: list[np.ndarray]) -> None:  # noqa: B027 (optional hook)
        """Per-source work on one or several crops of one person, done once before they
        are used (default: none)."""

    @abstractmethod
    def reenact(
        self, sources: list[np.ndarray], driver: np.ndarray, reference: np.ndarray | None = None
    ) -> np.ndarray:
        """The driver's pose, expression and gaze on the person of ``sources`` (N-shot when
        there are several; methods that cannot use more take the first). ``reference``:
        the driver's rest frame for relative motion (cross-identity); None: the driver's
        absolute motion (self-reenactment)."""

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

    def reenact(self, sources, driver, reference=None) -> np.ndarray:
        return sources[0].copy()

    def redirect_gaze(self, source: np.ndarray, pitch: float, yaw: float) -> np.ndarray:
        return source.copy()


class Oracle(Method):
    name = "oracle"
    description = (
        "output = the driver re-encoded as JPEG (quality 75): the measurement noise floor; "
        "with no image of the requested gaze, gaze redirection returns the source re-encoded"
    )

    def reenact(self, sources, driver, reference=None) -> np.ndarray:
        return jpeg_round_trip(driver)

    def redirect_gaze(self, source: np.ndarray, pitch: float, yaw: float) -> np.ndarray:
        return jpeg_round_trip(source)


class FreeheadMethod(Method):
    """freehead as users run it: the :class:`~freehead.inference.reenactor.Reenactor` in
    crop mode (the dataset's crops are aligned, so no tracking) with smoothing off (the
    drivers are single frames). Self-reenactment drives absolutely, cross-identity
    relatively to the driving clip's first frame, and gaze redirection is
    :meth:`~freehead.inference.reenactor.Reenactor.redirect_gaze` (only the eyes change).
    Where a G v2's mouth opens wider than the source's, cross-identity shows the driver's
    interior (``cross_mouth``, by default ``"driver"``); self-reenactment the dark cavity,
    since there the driver is the very frame the output is compared with.

    The prepared source is cached while the same source images come back.
    """

    name = "freehead"
    description = "the Reenactor (E_can + E_gaze + sketch + G) on aligned crops"
    cross_mouth = "driver"

    def __init__(self, generator: str | None = None, keypoints: str | None = None,
                 gaze: str | None = None):  # fmt: skip
        from freehead.inference.reenactor import Reenactor

        self.reenactor = Reenactor.from_pretrained(
            keypoints=keypoints, gaze=gaze, generator=generator
        )
        self._key: bytes | None = None
        self._source = None

    def prepare(self, sources: list[np.ndarray]) -> None:
        import hashlib

        key = hashlib.blake2b(b"".join(s.tobytes() for s in sources), digest_size=16).digest()
        if key != self._key:
            self._source = self.reenactor.prepare_source(sources, crops=True)
            self._key = key

    def reenact(self, sources, driver, reference=None) -> np.ndarray:
        self.prepare(sources)
        return self.reenactor.reenact(
            self._source, driver, reference=reference, relative=reference is not None,
            crops=True, smoothing=0.0, mouth=self.cross_mouth if reference is not None else "cavity",
        )  # fmt: skip

    def redirect_gaze(self, source: np.ndarray, pitch: float, yaw: float) -> np.ndarray:
        return self.reenactor.redirect_gaze(source, pitch, yaw, crops=True)


class MeshWarpMethod(Method):
    """meshwarp (:mod:`freehead.perception.meshwarp`): no learning, the source warped along
    mediapipe's face mesh onto the driver's. Cross-identity drives relatively to the
    reference (the driver's head and expression change put on the source's mesh);
    self-reenactment absolutely (the driver's own mesh, where it is in its crop: the same
    person in the same crop frame); gaze redirection turns the irises about their eyeball
    centres. Landmarks come from a still-image ``FaceTracker``; the prepared source and
    the reference's landmarks are cached while the same images come back.
    """

    name = "meshwarp"
    description = "no learning: the source warped along the face mesh onto the driver's"

    def __init__(self) -> None:
        from freehead.perception.meshwarp import MeshWarp
        from freehead.perception.tracker import FaceTracker

        self.warp = MeshWarp()
        self.tracker = FaceTracker(video=False)
        self._key: bytes | None = None
        self._source = None
        self._reference: tuple[bytes, np.ndarray] | None = None

    def _landmarks(self, image: np.ndarray, what: str) -> np.ndarray:
        from freehead.perception.meshwarp import track_landmarks

        return track_landmarks(self.tracker, image, what)

    def prepare(self, sources: list[np.ndarray]) -> None:
        key = _digest(sources[:1])
        if key != self._key:
            self._source = self.warp.prepare(sources[0], self._landmarks(sources[0], "source"))
            self._key = key

    def reenact(
        self, sources: list[np.ndarray], driver: np.ndarray, reference: np.ndarray | None = None
    ) -> np.ndarray:
        self.prepare(sources)
        d = self._landmarks(driver, "driver")
        if reference is None:
            return self.warp.render(self._source, self.warp.absolute(self._source, d))
        key = _digest([reference])
        if self._reference is None or self._reference[0] != key:
            self._reference = (key, self._landmarks(reference, "driver's reference"))
        target = self.warp.relative(self._source, d, self._reference[1])
        return self.warp.render(self._source, target)

    def redirect_gaze(self, source: np.ndarray, pitch: float, yaw: float) -> np.ndarray:
        self.prepare([source])
        return self.warp.render(self._source, self.warp.gaze(self._source, pitch, yaw))


def _digest(images: list[np.ndarray]) -> bytes:
    """A short hash of some images' pixels (and shapes), to tell cached inputs apart."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for image in images:
        h.update(repr(image.shape).encode())
        h.update(np.ascontiguousarray(image).tobytes())
    return h.digest()


METHODS: dict[str, type[Method]] = {
    "copy-source": CopySource,
    "oracle": Oracle,
    "freehead": FreeheadMethod,
    "meshwarp": MeshWarpMethod,
}


def make_method(name: str, generator: str | None = None) -> Method:
    """The method called ``name`` (a key of :data:`METHODS`); ``generator``: G's model file
    for ``freehead`` (None: the shipped one)."""
    from freehead.errors import FreeheadError

    if name not in METHODS:
        raise FreeheadError(f"no method {name!r}; choose one of {', '.join(sorted(METHODS))}")
    if name == "freehead":
        return FreeheadMethod(generator=generator)
    if generator is not None:
        raise FreeheadError("a generator file is only used by the freehead method")
    return METHODS[name]()
