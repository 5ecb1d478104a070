"""``Reenactor``: freehead's inference pipeline over the three networks.

A thin layer over E_can, E_gaze and G (see DESIGN §2): faces are read from full frames
(:class:`~freehead.inference.faces.FaceReader`), a target pose, expression and gaze is
made (:mod:`freehead.inference.motion`), drawn as a gaze-coded sketch and rendered by G
from the source(s), whose work is done once. Images go in as numpy arrays (RGB, any
dtype and channel count) or PIL images, and come out as ``(H, W, 3)`` uint8 RGB.

Video methods take any iterable of frames and return a lazy iterator, so a long video is
never held in memory.

>>> from freehead import Reenactor
>>> r = Reenactor.from_pretrained()                                    # doctest: +SKIP
>>> out = r.reenact(portrait, driving_frame)                           # doctest: +SKIP
>>> frames = r.reenact(portrait, video_frames, gaze="camera")         # doctest: +SKIP
>>> looked = r.redirect_gaze(portrait, pitch=10, yaw=-15)              # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from freehead.errors import FreeheadError
from freehead.inference.faces import FaceReader, FaceReading
from freehead.inference.masks import eye_mask, face_mask
from freehead.inference.motion import FaceMotion, GazeControl, relative_motion
from freehead.inference.smoothing import OneEuroFilter, SmoothingConfig
from freehead.media import MAX_PIXELS
from freehead.perception.crop import paste_back
from freehead.sketch import draw_sketch

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parent / "assets" / "models"
MODEL_FILES = {
    "keypoints": "keypoint_estimator.safetensors",
    "gaze": "gaze_estimator.safetensors",
    "generator": "generator.safetensors",
}
"""The file of each network in a model folder (as shipped in ``assets/models``)."""

MIN_SIDE = 32
"""Images with a side shorter than this are refused: no face can be read in them."""

PASTE_BACK = (None, "source", "driver")
RUNTIMES = ("torch", "onnx")


def as_rgb8(image, name: str = "image") -> np.ndarray:
    """A numpy array (RGB or RGBA order; gray; uint8, uint16, bool or float in [0, 1]) or a
    PIL image -> ``(H, W, 3)`` uint8 RGB. FreeheadError for anything else."""
    if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image
        image = np.asarray(image.convert("RGB"))
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise FreeheadError(f"{name}: expected an image (H, W, 3), got shape {a.shape}")
    a = a[..., :3]
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise FreeheadError(f"{name}: the image has NaN or infinite values")
        a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise FreeheadError(f"{name}: unsupported pixel type {a.dtype}")
    h, w = a.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise FreeheadError(f"{name} is {w}x{h}: too small to hold a face")
    if h * w > MAX_PIXELS:
        raise FreeheadError(f"{name} is {w}x{h}: too large")
    return np.ascontiguousarray(a)


def _is_single_image(x) -> bool:
    return (hasattr(x, "convert") and hasattr(x, "mode")) or (
        isinstance(x, np.ndarray) and x.ndim in (2, 3)
    )


@dataclass(frozen=True)
class ReenactOptions:
    """How a driver's motion is put on a source.

    ``relative``: the driver's motion since its first frame is applied to the source (a
    cross-identity source keeps its own face shape and position); otherwise the driver's
    absolute pose and expression. ``gaze``: :class:`GazeControl` or its text form
    (``transfer``, ``camera``, ``PITCH,YAW``, a CSV path). ``yaw``/``pitch``/``roll``:
    head angles in degrees that replace the driven ones. ``paste_back``: None (the
    crop), ``"source"`` (into the source's full frame) or ``"driver"`` (into the driving
    frame). ``smoothing``: One Euro smoothing strength of the driver's pose, expression
    and gaze (0 = off, 1 = default; see :mod:`freehead.inference.smoothing`).
    ``driver_face_index``: the driver's face when there are several (0 = the largest).
    """

    relative: bool = True
    gaze: GazeControl | str = "transfer"
    yaw: float | None = None
    pitch: float | None = None
    roll: float | None = None
    paste_back: str | None = None
    smoothing: float = 1.0
    driver_face_index: int = 0

    @classmethod
    def merged(cls, options: ReenactOptions | None, fields: dict) -> ReenactOptions:
        """``options`` (default: the defaults) with ``fields`` replaced, checked."""
        opts = options or cls()
        return (replace(opts, **fields) if fields else opts).checked()

    def checked(self) -> ReenactOptions:
        gaze = GazeControl.parse(self.gaze) if isinstance(self.gaze, str) else self.gaze
        if self.paste_back not in PASTE_BACK:
            raise FreeheadError(
                f"paste_back must be None, 'source' or 'driver', not {self.paste_back!r}"
            )
        if self.driver_face_index < 0:
            raise FreeheadError("the driver's face index must be >= 0")
        if self.smoothing < 0:
            raise FreeheadError("smoothing strength must be >= 0")
        for name in ("yaw", "pitch", "roll"):
            v = getattr(self, name)
            if v is not None and not (np.isfinite(v) and abs(v) <= 90):
                raise FreeheadError(f"{name} {v} is out of range (-90 to 90 degrees)")
        return replace(self, gaze=gaze)


@dataclass
class Source:
    """A prepared source: its full images, face readings, the mean canonical keypoints
    ``(K, 3)`` and G's encoding (``m`` images)."""

    images: list[np.ndarray]
    readings: list[FaceReading]
    canonical: np.ndarray
    features: object
    m: int

    @property
    def motion(self) -> FaceMotion:
        return self.readings[0].motion


@dataclass(frozen=True)
class _Driver:
    """The last driving frame with a face: its smoothed motion vector
    (:meth:`FaceMotion.to_vector`), crop box ``(3,)`` and keypoints ``(K, 3)``."""

    vector: np.ndarray
    box: np.ndarray
    keypoints: np.ndarray


def run_ahead(items: Iterator, depth: int) -> Iterator:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead of the
    consumer. Exceptions reach the consumer; stopping early stops the thread."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((done, None))
        except BaseException as e:  # handed to the consumer
            q.put((done, e))
        finally:  # release what the items hold (a tracker), in the thread that used it
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name="freehead-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = q.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


class Reenactor:
    """E_can + E_gaze + G and every inference mode. Build with :meth:`from_pretrained`."""

    def __init__(self, keypoints, gaze, generator):
        self.e_can = keypoints.eval()
        self.e_gaze = gaze.eval()
        self.g = generator.eval()
        self.size = int(self.g.config.image_size)
        self.runtime = "torch"
        self.files: dict[str, Path] = {}
        """The model files the networks came from (set by :meth:`from_pretrained`)."""

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | None = None,
        *,
        keypoints: str | Path | None = None,
        gaze: str | Path | None = None,
        generator: str | Path | None = None,
        runtime: str = "torch",
        onnx_dir: str | Path | None = None,
        threads: int | None = None,
    ) -> Reenactor:
        """Load the three networks. ``path``: a folder holding ``keypoint_estimator``,
        ``gaze_estimator`` and ``generator.safetensors`` (None = the shipped models);
        ``keypoints``/``gaze``/``generator`` override one file each.

        ``runtime="onnx"`` runs them on ONNX Runtime: from ``onnx_dir`` (made by
        ``freehead export-onnx``) or, when None, from graphs exported once into a cache.
        ``threads``: the ONNX Runtime threads (default: torch's)."""
        from freehead.models import GazeEstimator, KeypointEstimator
        from freehead.models.generator import Generator

        if runtime not in RUNTIMES:
            raise FreeheadError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        folder = SHIPPED_DIR if path is None else Path(path)
        if not folder.is_dir():
            raise FreeheadError(f"{folder} is not a model folder")

        def pick(part: str, override: str | Path | None) -> Path:
            return Path(override) if override is not None else folder / MODEL_FILES[part]

        files = {"keypoints": pick("keypoints", keypoints), "gaze": pick("gaze", gaze),
                 "generator": pick("generator", generator)}  # fmt: skip
        reenactor = cls(
            KeypointEstimator.from_pretrained(files["keypoints"]),
            GazeEstimator.from_pretrained(files["gaze"]),
            Generator.from_pretrained(files["generator"]),
        )
        if runtime == "onnx":
            from freehead.onnx_runtime import open_onnx_models

            n = threads or torch.get_num_threads()
            reenactor = cls(*open_onnx_models(reenactor, files, onnx_dir, n))
        reenactor.runtime, reenactor.files = runtime, files
        return reenactor

    # ------------------------------------------------------------------ sources
    def _reader(self, video: bool, face_index: int = 0, fps: float = 25.0,
                smoothing: float = 1.0, name: str = "input") -> FaceReader:  # fmt: skip
        return FaceReader(self.e_can, self.e_gaze, self.size, video=video, face_index=face_index,
                          fps=fps, smoothing=SmoothingConfig(strength=smoothing), name=name)  # fmt: skip

    def prepare_source(self, images, face_index: int = 0, names: list[str] | None = None) -> Source:
        """Read and encode one or several images of one person (N-shot). ``images``: an
        image or a list of them. FreeheadError when one holds no face."""
        if isinstance(images, Source):
            return images
        images = [images] if _is_single_image(images) else list(images)
        if not images:
            raise FreeheadError("no source image given")
        names = names or [f"source {i + 1}" for i in range(len(images))]
        frames = [as_rgb8(im, n) for im, n in zip(images, names, strict=True)]
        readings = []
        for frame, name in zip(frames, names, strict=True):
            with self._reader(video=False, face_index=face_index, name=name) as reader:
                reading = reader(frame)
            if reading is None:
                count = reader.last_count
                if count:
                    raise FreeheadError(f"{name} has {count} face(s); face index {face_index} "
                                        "is out of range")  # fmt: skip
                raise FreeheadError(f"no face found in {name}")
            readings.append(reading)
        return self._encode(frames, readings)

    def _encode(self, frames: list[np.ndarray], readings: list[FaceReading]) -> Source:
        from freehead.models.backbone import to_network_input

        crops = np.stack([r.crop for r in readings])
        sketches = np.stack([draw_sketch(r.keypoints, r.motion.gaze_angles, self.size)
                             for r in readings])  # fmt: skip
        with torch.inference_mode():
            features = self.g.encode_sources(
                to_network_input(crops)[None], to_network_input(sketches)[None]
            )
        canonical = np.mean([r.canonical for r in readings], axis=0)
        return Source(frames, readings, canonical, features, len(readings))

    # ------------------------------------------------------------------ rendering
    def render(
        self, source: Source, motion: FaceMotion, keypoints: np.ndarray | None = None
    ) -> np.ndarray:
        """G's ``(S, S, 3)`` crop of the source with a pose, expression and gaze
        (``keypoints``: the motion's keypoints ``(K, 3)`` when already computed)."""
        from freehead.models.backbone import to_image, to_network_input

        if keypoints is None:
            keypoints = motion.keypoints(source.canonical)
        sketch = draw_sketch(keypoints, motion.gaze_angles, self.size)
        with torch.inference_mode():
            out = self.g.render_frame(source.features, to_network_input(sketch), source.m)
        return to_image(out.image[0])

    # ------------------------------------------------------------------ reenact
    def reenact(self, source, driving, options: ReenactOptions | None = None, *,
                fps: float = 25.0, **fields) -> np.ndarray | Iterator[np.ndarray]:  # fmt: skip
        """Put a driver's pose, expression and gaze on the source person.

        ``source``: an image, a list of images of one person (N-shot) or a prepared
        :class:`Source`. ``driving``: one image (returns one image; the motion is then
        absolute, as relative to itself it would be none) or an iterable of video frames
        (returns a lazy iterator of frames). ``options`` and/or ``fields``: a
        :class:`ReenactOptions` and/or its fields by name; ``fps``: the driving video's
        frame rate, for smoothing.
        """
        opts = ReenactOptions.merged(options, fields)
        src = self.prepare_source(source)
        if _is_single_image(driving):
            if opts.relative:  # relative to itself, a single driving image would do nothing
                opts = replace(opts, relative=False)
            frame = as_rgb8(driving, "the driving image")
            (image,) = self.reenact_frames(src, [frame], opts, fps, "the driving image")
            return image
        return self.reenact_frames(src, driving, opts, fps)

    def reenact_frames(self, source: Source, frames: Iterable, options: ReenactOptions,
                       fps: float = 25.0, name: str = "the driving video",
                       threaded: bool = False) -> Iterator[np.ndarray]:  # fmt: skip
        """The per-frame loop of :meth:`reenact` (lazy). A frame without the driver's face
        holds the last pose; frames before the first face show the source's own pose.

        ``threaded``: read the next driving frames (tracking, E_can, E_gaze) in a second
        thread while G renders the current one; the same outputs, more of them per second
        on a machine with a core to spare."""
        options = options.checked()
        steps = self._drive(source, frames, options, fps, name)
        if threaded:
            steps = run_ahead(steps, depth=2)
        for i, frame, motion, held in steps:
            yield self._finish(source, motion, options, i, frame, held)

    def stream(self, source, frames: Iterable, options: ReenactOptions | None = None, *,
               fps: float = 25.0, threaded: bool | None = None, **fields) -> Iterator[np.ndarray]:  # fmt: skip
        """Output frames one by one as driving frames come (a camera, a call); the source is
        prepared once. ``threaded`` (default: on with the ONNX runtime, whose sessions
        share the cores well; PyTorch's own threads already fill them) reads a frame ahead
        in a second thread. ``options``/``fields`` as in :meth:`reenact`."""
        opts = ReenactOptions.merged(options, fields)
        if threaded is None:
            threaded = self.runtime == "onnx"
        return self.reenact_frames(self.prepare_source(source), frames, opts, fps,
                                   threaded=threaded)  # fmt: skip

    def _drive(self, source: Source, frames: Iterable, options: ReenactOptions, fps: float,
               name: str) -> Iterator[tuple[int, np.ndarray, FaceMotion, _Driver | None]]:  # fmt: skip
        """Read each driving frame -> (index, frame, target motion, the driver record)."""
        smoother = OneEuroFilter(fps, SmoothingConfig(strength=options.smoothing))
        k = source.canonical.shape[0]
        first: FaceMotion | None = None
        held: _Driver | None = None
        missing = 0
        with self._reader(True, options.driver_face_index, fps, options.smoothing, name) as reader:
            for i, frame in enumerate(frames):
                frame = as_rgb8(frame, f"driving frame {i}")
                reading = reader(frame)
                if reading is None:
                    missing += 1
                    if missing == 1 and held is not None:
                        log.info("no face in the driving frame %d; holding the last pose", i)
                else:
                    if missing and held is not None:
                        log.info("the driver's face is back at frame %d", i)
                    missing = 0
                    if first is None:
                        first = reading.motion
                    held = _Driver(smoother(reading.motion.to_vector()), reading.box,
                                   reading.keypoints)  # fmt: skip
                if held is None:
                    motion = source.motion
                else:
                    driver = FaceMotion.from_vector(held.vector, k)
                    motion = (relative_motion(source.motion, driver, first)  # type: ignore[arg-type]
                              if options.relative else driver)  # fmt: skip
                yield i, frame, motion, held
        if first is None:
            raise FreeheadError(f"no face found in {name}")

    def _finish(self, source: Source, motion: FaceMotion, options: ReenactOptions, i: int,
                frame: np.ndarray, held: _Driver | None) -> np.ndarray:  # fmt: skip
        motion = motion.with_angles(options.yaw, options.pitch, options.roll)
        assert isinstance(options.gaze, GazeControl)
        target = options.gaze.target(i)
        if target is not None:
            motion = motion.with_camera_gaze(target)
        keypoints = motion.keypoints(source.canonical)
        crop = self.render(source, motion, keypoints)
        if options.paste_back == "source":
            mask = face_mask([source.readings[0].keypoints, keypoints], self.size)
            return paste_back(source.images[0], crop, source.readings[0].box, mask)
        if options.paste_back == "driver":
            if held is None:
                return frame.copy()
            mask = face_mask([held.keypoints, keypoints], self.size)
            return paste_back(frame, crop, held.box, mask)
        return crop

    # ------------------------------------------------------------------ gaze
    def _edit_eyes(self, reading: FaceReading, frame: np.ndarray, angles: np.ndarray) -> np.ndarray:
        return self.edit_eyes(self._encode([frame], [reading]), angles)

    def edit_eyes(self, source: Source, angles: np.ndarray) -> np.ndarray:
        """A prepared source's image with its eyes turned to camera-frame (pitch, yaw)
        ``(2,)``: G re-renders the crop from itself with the new gaze, and only the eye
        regions are pasted back. Reuse the source to try several gazes on one image."""
        reading = source.readings[0]
        crop = self.render(source, reading.motion.with_camera_gaze(np.asarray(angles, float)))
        mask = eye_mask(reading.keypoints, self.size)
        return paste_back(source.images[0], crop, reading.box, mask)

    def redirect_gaze(self, image_or_frames, pitch: float, yaw: float, face_index: int = 0,
                      fps: float = 25.0) -> np.ndarray | Iterator[np.ndarray]:  # fmt: skip
        """Turn the eyes to (pitch, yaw) degrees in the camera frame; only the eye regions
        change. One image -> one image; frames -> a lazy iterator (frames without a face
        pass unchanged)."""
        return self.look(image_or_frames, f"{pitch},{yaw}", face_index, fps)

    def eye_contact(self, image_or_frames, face_index: int = 0, fps: float = 25.0):
        """The person looks into the camera; only the eye regions change."""
        return self.look(image_or_frames, "camera", face_index, fps)

    def look(self, image_or_frames, gaze: GazeControl | str, face_index: int = 0,
             fps: float = 25.0, name: str = "the image") -> np.ndarray | Iterator[np.ndarray]:  # fmt: skip
        """Eyes turned as ``gaze`` says (``camera``, ``PITCH,YAW``, a CSV gaze path over
        frames, or a :class:`GazeControl`); only the eye regions change."""
        control = GazeControl.parse(gaze) if isinstance(gaze, str) else gaze
        if control.mode == "transfer":
            raise FreeheadError("gaze editing needs a target gaze (camera, PITCH,YAW or a path)")
        if _is_single_image(image_or_frames):
            frame = as_rgb8(image_or_frames)
            with self._reader(False, face_index, name=name) as reader:
                reading = reader(frame)
            if reading is None:
                if reader.last_count:
                    raise FreeheadError(f"{name} has {reader.last_count} face(s); face index "
                                        f"{face_index} is out of range")  # fmt: skip
                raise FreeheadError(f"no face found in {name}")
            return self._edit_eyes(reading, frame, control.target(0))
        return self._look_frames(image_or_frames, control, face_index, fps)

    def _look_frames(self, frames: Iterable, control: GazeControl, face_index: int,
                     fps: float) -> Iterator[np.ndarray]:  # fmt: skip
        with self._reader(True, face_index, fps, name="the video") as reader:
            for i, frame in enumerate(frames):
                frame = as_rgb8(frame, f"frame {i}")
                reading = reader(frame)
                if reading is None:
                    yield frame
                    continue
                yield self._edit_eyes(reading, frame, control.target(i))

    # ------------------------------------------------------------------ free view
    def free_view(self, image, yaw: float | None = None, pitch: float | None = None,
                  roll: float | None = None, gaze: str | GazeControl | None = None,
                  paste_back: bool = False) -> np.ndarray:  # fmt: skip
        """The source with its head turned to (yaw, pitch, roll) degrees (None keeps that
        angle); the eyes keep their direction relative to the head unless ``gaze`` is
        given. Returns the crop, or the full image with ``paste_back``."""
        source = self.prepare_source(image)
        options = ReenactOptions(
            yaw=yaw, pitch=pitch, roll=roll, gaze=gaze or "transfer",
            paste_back="source" if paste_back else None,
        ).checked()  # fmt: skip
        return self._finish(source, source.motion, options, 0, source.images[0], None)
