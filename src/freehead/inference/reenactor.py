"""``Reenactor``: freehead's inference pipeline over the three networks.

A thin layer over :class:`~freehead.inference.networks.FaceNetworks`: faces are read from
full frames (:class:`~freehead.inference.faces.FaceReader`, or :class:`CropReader` for
aligned crops), a target pose, expression and gaze is made
(:mod:`freehead.inference.motion`, :mod:`freehead.inference.gaze`) and rendered by G from
the source(s), whose work is done once. Images go in as numpy arrays (RGB, any dtype and
channel count) or PIL images, and come out as ``(H, W, 3)`` uint8 RGB.

Video methods take any iterable of frames and return a lazy iterator, so a long video is
never held in memory. The evaluation (``freehead evaluate --method freehead``) and
``freehead bench`` run this same per-frame path.

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

from freehead.errors import FreeheadError
from freehead.inference.faces import CropReader, FaceReader, FaceReading, describe_faces
from freehead.inference.gaze import GazeControl
from freehead.inference.masks import eye_mask, face_mask
from freehead.inference.mesh_motion import MeshPrior, MeshSource, MouthGap
from freehead.inference.motion import FaceMotion, relative_motion
from freehead.inference.mouth_fill import fill_mouth
from freehead.inference.networks import FaceNetworks, SourceEncoding
from freehead.inference.read_ahead import run_ahead
from freehead.inference.smoothing import OneEuroFilter, SmoothingConfig
from freehead.media import as_rgb8
from freehead.perception.crop import crop_coverage, fill_uncovered, paste_back

log = logging.getLogger(__name__)

PASTE_BACK = (None, "source", "driver")
MOUTH_FILLS = ("driver", "cavity", "warp")


def _number(value, what: str) -> float:
    """``value`` as a finite float, or FreeheadError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise FreeheadError(f"{what} must be a number, not {type(value).__name__}")
    if not np.isfinite(value):
        raise FreeheadError(f"{what} must be a finite number, not {value}")
    return float(value)


def _images(images, what: str) -> list:
    """``images`` as a list of images (one image, or an iterable of them); FreeheadError
    for anything else (None, a number, text, a mapping)."""
    if _is_single_image(images):
        return [images]
    if images is None or isinstance(images, str | bytes | dict | int | float):
        raise FreeheadError(f"{what} must be an image (array or PIL image) or a list of them, "
                            f"not {type(images).__name__}")  # fmt: skip
    try:
        return list(images)
    except TypeError:
        raise FreeheadError(
            f"{what} must be an image or a list of them, not {type(images).__name__}"
        ) from None


def _frames(frames, what: str) -> Iterable:
    """``frames``, an iterable of video frames (left lazy), or FreeheadError for what
    cannot be one (None, a number, text, a mapping)."""
    if (
        frames is None
        or isinstance(frames, str | bytes | dict | int | float)
        or not hasattr(frames, "__iter__")
    ):
        raise FreeheadError(f"{what} must be an image or an iterable of frames, not "
                            f"{type(frames).__name__}")  # fmt: skip
    return frames


def _is_single_image(x) -> bool:
    return (hasattr(x, "convert") and hasattr(x, "mode")) or (
        isinstance(x, np.ndarray) and x.ndim in (2, 3)
    )


@dataclass(frozen=True)
class ReenactOptions:
    """How a driver's motion is put on a source.

    ``relative``: the driver's motion since its reference frame (its first frame with a
    face, or the ``reference`` image given) is applied to the source, so a cross-identity
    source keeps its own face shape and position; otherwise the driver's absolute pose
    and expression. ``gaze``: a :class:`GazeControl` (text such as ``"camera"`` is read by
    :meth:`GazeControl.parse`). ``yaw``/``pitch``/``roll``: head angles in degrees that
    replace the driven ones. ``paste_back``: None (the crop), ``"source"`` (into the
    source's full frame) or ``"driver"`` (into the driving frame). ``smoothing``: One Euro
    smoothing strength of the driver's pose, expression and gaze (0 = off, 1 = default;
    see :mod:`freehead.inference.smoothing`). ``driver_face_index``: the driver's face
    when there are several (0 = the largest). ``crops``: the driving images are aligned
    face crops (no tracking; see :class:`~freehead.inference.faces.CropReader`).
    ``mouth``: what a G v2 shows where the mouth opens wider than the source's
    (:mod:`freehead.inference.mouth_fill`): ``"driver"`` the driving face's own interior
    (teeth, tongue; the dark cavity where no face drives), ``"cavity"`` the dark cavity,
    ``"warp"`` the warp's stretched lower lip, as G draws it.
    """

    relative: bool = True
    gaze: GazeControl | str = GazeControl()  # noqa: RUF009 (frozen: one shared default is safe)
    yaw: float | None = None
    pitch: float | None = None
    roll: float | None = None
    paste_back: str | None = None
    smoothing: float = 1.0
    driver_face_index: int = 0
    crops: bool = False
    mouth: str = "driver"

    @classmethod
    def merged(cls, options: ReenactOptions | None, fields: dict) -> ReenactOptions:
        """``options`` (default: the defaults) with ``fields`` replaced, checked."""
        opts = options or cls()
        return (replace(opts, **fields) if fields else opts).checked()

    def checked(self) -> ReenactOptions:
        """These options with ``gaze`` read, or FreeheadError naming the bad one."""
        if isinstance(self.gaze, str):
            gaze = GazeControl.parse(self.gaze)
        elif isinstance(self.gaze, GazeControl):
            gaze = self.gaze
        else:
            raise FreeheadError(f"gaze must be a GazeControl or text such as 'camera', not "
                                f"{type(self.gaze).__name__}")  # fmt: skip
        if self.mouth not in MOUTH_FILLS:
            raise FreeheadError(f"mouth must be one of {', '.join(MOUTH_FILLS)}, not "
                                f"{self.mouth!r}")  # fmt: skip
        if self.paste_back not in PASTE_BACK:
            raise FreeheadError(
                f"paste_back must be None, 'source' or 'driver', not {self.paste_back!r}"
            )
        for name in ("relative", "crops"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise FreeheadError(f"{name} must be True or False, not {getattr(self, name)!r}")
        index = self.driver_face_index
        if isinstance(index, bool) or not isinstance(index, int | np.integer) or index < 0:
            raise FreeheadError(
                f"the driver's face index must be a whole number >= 0, not {index!r}"
            )
        if _number(self.smoothing, "smoothing strength") < 0:
            raise FreeheadError("smoothing strength must be >= 0")
        for name in ("yaw", "pitch", "roll"):
            v = getattr(self, name)
            if v is not None and abs(_number(v, f"head {name}")) > 90:
                raise FreeheadError(f"head {name} {v} is out of range (-90 to 90 degrees)")
        return replace(self, gaze=gaze)

    @property
    def gaze_control(self) -> GazeControl:
        """The gaze request (after :meth:`checked`)."""
        assert isinstance(self.gaze, GazeControl), "call checked() first"
        return self.gaze


@dataclass
class PreparedSource:
    """A source ready to drive: its full images, face readings, the mean canonical
    keypoints ``(K, 3)``, G's encoding of its ``m`` images and, for a G v2, their meshes."""

    images: list[np.ndarray]
    readings: list[FaceReading]
    canonical: np.ndarray
    encoding: SourceEncoding
    meshes: list[MeshSource] | None = None

    @property
    def motion(self) -> FaceMotion:
        return self.readings[0].motion

    @property
    def m(self) -> int:
        return self.encoding.m


@dataclass(frozen=True)
class _Driver:
    """The last driving frame with a face: its smoothed motion vector
    (:meth:`FaceMotion.to_vector`), crop box ``(3,)`` and keypoints ``(K, 3)``; its face
    mesh ``(478, 3)`` in crop pixels and, when driving relatively, the reference frame's
    (for a G v2's prior); its crop ``(S, S, 3)`` (whose mouth interior a G v2 may show)."""

    vector: np.ndarray
    box: np.ndarray
    keypoints: np.ndarray
    landmarks: np.ndarray | None = None
    reference: np.ndarray | None = None
    crop: np.ndarray | None = None


@dataclass(frozen=True)
class _FrameInputs:
    """What G renders one frame from: target ``keypoints`` ``(K, 3)``, camera-frame
    ``gaze`` ``(2,)`` or per eye ``(2, 2)`` degrees, and a G v2's ``prior`` ``(m, 2, S, S)``
    (None for a plain G) and the first source's mouth gap, with the driving face's crop
    and mesh where one drives (``driver``)."""

    keypoints: np.ndarray
    gaze: np.ndarray
    prior: np.ndarray | None
    mouth: MouthGap | None = None
    driver: tuple[np.ndarray, np.ndarray] | None = None


def _drawn_crop(reading: FaceReading) -> np.ndarray:
    """The source crop G and the warp draw from: the reading's crop, with the part past the
    photo (black there, as the estimators were trained) filled from the photo's hair and
    background."""
    if reading.frame_shape is None:
        return reading.crop
    size = reading.crop.shape[0]
    coverage = crop_coverage(reading.frame_shape, reading.box, size)
    if coverage.min() >= 1.0:
        return reading.crop
    return fill_uncovered(reading.crop, coverage, face_mask([reading.keypoints], size))


def _no_face(name: str, faces: tuple[np.ndarray, ...], face_index: int) -> FreeheadError:
    if faces:
        return FreeheadError(f"{name} has {len(faces)} face(s), so face index {face_index} is "
                             f"out of range: {describe_faces(faces)}")  # fmt: skip
    return FreeheadError(f"no face found in {name}")


class Reenactor:
    """E_can + E_gaze + G and every inference mode. Build with :meth:`from_pretrained`."""

    def __init__(self, networks: FaceNetworks):
        self.networks = networks
        self.mesh = MeshPrior(networks.size) if networks.needs_mesh else None

    @property
    def size(self) -> int:
        return self.networks.size

    @property
    def runtime(self) -> str:
        return self.networks.runtime

    @property
    def files(self) -> dict[str, Path]:
        """The model files the networks came from."""
        return self.networks.files

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, **kwargs) -> Reenactor:
        """Load the three networks: ``path`` a model folder (None = the shipped models);
        ``keypoints``/``gaze``/``generator`` override one file each; ``runtime`` ("torch"
        or "onnx"), ``onnx_dir``, ``threads``: see :meth:`FaceNetworks.load`."""
        return cls(FaceNetworks.load(path, **kwargs))

    # ------------------------------------------------------------------ sources
    def _reader(self, video: bool, face_index: int = 0, fps: float = 25.0,
                smoothing: float = 1.0, name: str = "input",
                crops: bool = False) -> FaceReader | CropReader:  # fmt: skip
        if crops:
            return CropReader(self.networks, name=name)
        return FaceReader(self.networks, video=video, face_index=face_index, fps=fps,
                          smoothing=SmoothingConfig(strength=smoothing), name=name)  # fmt: skip

    def _read_still(self, image: np.ndarray, face_index: int, name: str,
                    crops: bool = False) -> FaceReading:  # fmt: skip
        with self._reader(False, face_index, name=name, crops=crops) as reader:
            reading = reader(image)
        if reading is None:
            raise _no_face(name, getattr(reader, "last_faces", ()), face_index)
        return reading

    def prepare_source(self, images, face_index: int = 0, names: list[str] | None = None,
                       crops: bool = False) -> PreparedSource:  # fmt: skip
        """Read and encode one or several images of one person (N-shot). ``images``: an
        image or a list of them; ``crops``: they are aligned face crops. FreeheadError
        when one holds no face."""
        if isinstance(images, PreparedSource):
            return images
        images = _images(images, "the source")
        if not images:
            raise FreeheadError("no source image given")
        names = names or [f"source {i + 1}" for i in range(len(images))]
        frames = [as_rgb8(im, n) for im, n in zip(images, names, strict=True)]
        readings = [self._read_still(f, face_index, n, crops)
                    for f, n in zip(frames, names, strict=True)]  # fmt: skip
        return self._encode(frames, readings)

    def _encode(self, frames: list[np.ndarray], readings: list[FaceReading]) -> PreparedSource:
        # where a crop runs past its photo, G and the warp see the photo's colours carried
        # on, not the black the estimators were trained with
        crops = [_drawn_crop(r) for r in readings]
        encoding = self.networks.encode_sources(
            np.stack(crops),
            np.stack([r.keypoints for r in readings]),
            np.stack([r.motion.gaze_angles for r in readings]),
        )
        canonical = np.mean([r.canonical for r in readings], axis=0)
        meshes = None
        if self.mesh is not None:
            with self.networks.clock.stage("mesh"):
                meshes = [self.mesh.prepare(c, r.landmarks, r.motion)
                          for c, r in zip(crops, readings, strict=True)]  # fmt: skip
        return PreparedSource(frames, readings, canonical, encoding, meshes)

    # ------------------------------------------------------------------ reenact
    def reenact(self, source, driving, options: ReenactOptions | None = None, *,
                fps: float = 25.0, reference=None, **fields) -> np.ndarray | Iterator[np.ndarray]:  # fmt: skip
        """Put a driver's pose, expression and gaze on the source person.

        ``source``: an image, a list of images of one person (N-shot) or a
        :class:`PreparedSource`. ``driving``: one image (returns one image) or an
        iterable of video frames (returns a lazy iterator of frames). ``reference``: the
        driver's rest frame for relative motion (default: the first driving frame with a
        face; a single driving image without a reference is driven absolutely, as
        relative to itself it would not move). ``options`` and/or ``fields``: a
        :class:`ReenactOptions` and/or its fields by name; ``fps``: the driving video's
        frame rate, for smoothing.
        """
        opts = ReenactOptions.merged(options, fields)
        src = self.prepare_source(source, crops=opts.crops)
        if _is_single_image(driving):
            if opts.relative and reference is None:
                opts = replace(opts, relative=False)
            frame = as_rgb8(driving, "the driving image")
            (image,) = self.reenact_frames(src, [frame], opts, fps, "the driving image",
                                           reference=reference)  # fmt: skip
            return image
        return self.reenact_frames(src, _frames(driving, "the driving video"), opts, fps,
                                   reference=reference)  # fmt: skip

    def reenact_frames(self, source: PreparedSource, frames: Iterable, options: ReenactOptions,
                       fps: float = 25.0, name: str = "the driving video",
                       threaded: bool = False, reference=None) -> Iterator[np.ndarray]:  # fmt: skip
        """The per-frame loop of :meth:`reenact` (lazy). A frame without the driver's face
        holds the last pose; frames before the first face show the source's own pose.

        ``threaded``: read the next driving frames (tracking, E_can, E_gaze, a G v2's
        prior) in a second thread while G renders the current one; the same outputs, more of them per second
        on a machine with a core to spare."""
        options = options.checked()
        steps = (
            (frame, held, self._inputs(source, motion, options, i, held))
            for i, frame, motion, held in self._drive(source, frames, options, fps, name, reference)
        )  # fmt: skip
        if threaded:
            steps = run_ahead(steps, depth=2)
        for frame, held, inputs in steps:
            yield self._finish(source, inputs, options, frame, held)

    def stream(self, source, frames: Iterable, options: ReenactOptions | None = None, *,
               fps: float = 25.0, threaded: bool | None = None, **fields) -> Iterator[np.ndarray]:  # fmt: skip
        """Output frames one by one as driving frames come (a camera, a call); the source is
        prepared once. ``threaded`` (default: on with the ONNX runtime, whose sessions
        share the cores well; PyTorch's own threads already fill them) reads a frame ahead
        in a second thread. ``options``/``fields`` as in :meth:`reenact`."""
        opts = ReenactOptions.merged(options, fields)
        if threaded is None:
            threaded = self.runtime == "onnx"
        return self.reenact_frames(self.prepare_source(source, crops=opts.crops), frames, opts,
                                   fps, threaded=threaded)  # fmt: skip

    def _drive(self, source: PreparedSource, frames: Iterable, options: ReenactOptions,
               fps: float, name: str,
               reference=None) -> Iterator[tuple[int, np.ndarray, FaceMotion, _Driver | None]]:  # fmt: skip
        """Read each driving frame -> (index, frame, target motion, the driver record)."""
        smoother = OneEuroFilter(fps, SmoothingConfig(strength=options.smoothing))
        mesh_smoother = OneEuroFilter(fps, SmoothingConfig(strength=options.smoothing))
        k = source.canonical.shape[0]
        first: FaceMotion | None = None
        first_mesh: np.ndarray | None = None
        if reference is not None:
            image = as_rgb8(reference, "the driving reference")
            read = self._read_still(image, options.driver_face_index, "the driving reference",
                                    options.crops)  # fmt: skip
            first, first_mesh = read.motion, read.landmarks
        held: _Driver | None = None
        missing = 0
        with self._reader(True, options.driver_face_index, fps, options.smoothing, name,
                          options.crops) as reader:  # fmt: skip
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
                        first, first_mesh = reading.motion, reading.landmarks
                    mesh = reading.landmarks  # crop pixels: the smoother's units
                    if mesh is not None and self.mesh is not None:
                        mesh = mesh_smoother(mesh.reshape(-1)).reshape(mesh.shape)
                    held = _Driver(smoother(reading.motion.to_vector()), reading.box,
                                   reading.keypoints, mesh,
                                   first_mesh if options.relative else None,
                                   reading.crop)  # fmt: skip
                yield i, frame, self._target(source, held, first, options.relative, k), held
        if held is None:
            raise FreeheadError(f"no face found in {name}")

    @staticmethod
    def _target(source: PreparedSource, held: _Driver | None, first: FaceMotion | None,
                relative: bool, k: int) -> FaceMotion:  # fmt: skip
        """The motion to render: the source's own before the driver's first face."""
        if held is None:
            return source.motion
        driver = FaceMotion.from_vector(held.vector, k)
        if not relative:
            return driver
        assert first is not None
        return relative_motion(source.motion, driver, first)

    def _inputs(self, source: PreparedSource, motion: FaceMotion, options: ReenactOptions,
                i: int, held: _Driver | None) -> _FrameInputs:  # fmt: skip
        """What G renders frame ``i`` from: ``motion`` with the options' pose requests,
        the gaze asked for, and a G v2's prior."""
        motion = motion.with_angles(options.yaw, options.pitch, options.roll)
        target = options.gaze_control.target(i)
        gaze = motion.gaze_angles if target is None else target
        keypoints = motion.keypoints(source.canonical)
        posed = any(a is not None for a in (options.yaw, options.pitch, options.roll))
        prior, gaze, mouth = self._prior(source, motion, held, gaze, posed,
                                         transfer=target is None)  # fmt: skip
        driver = None
        if held is not None and held.crop is not None and held.landmarks is not None:
            driver = (held.crop, held.landmarks)
        return _FrameInputs(keypoints, gaze, prior, mouth, driver)

    def _finish(self, source: PreparedSource, inputs: _FrameInputs, options: ReenactOptions,
                frame: np.ndarray, held: _Driver | None) -> np.ndarray:  # fmt: skip
        keypoints = inputs.keypoints
        crop = self.networks.render(source.encoding, keypoints, inputs.gaze, inputs.prior)
        if inputs.mouth is not None and options.mouth != "warp":
            with self.networks.clock.stage("mouth"):
                driver = inputs.driver if options.mouth == "driver" else None
                m = inputs.mouth
                crop = fill_mouth(crop, m.cavity, m.mesh, m.lips, driver)
        with self.networks.clock.stage("paste_back"):
            if options.paste_back == "source":
                mask = face_mask([source.readings[0].keypoints, keypoints], self.size)
                return paste_back(source.images[0], crop, source.readings[0].box, mask)
            if options.paste_back == "driver":
                if held is None:
                    return frame.copy()
                mask = face_mask([held.keypoints, keypoints], self.size)
                return paste_back(frame, crop, held.box, mask)
        return crop

    def _prior(self, source: PreparedSource, motion: FaceMotion, held: _Driver | None,
               gaze: np.ndarray, posed: bool = False, transfer: bool = True
               ) -> tuple[np.ndarray | None, np.ndarray, MouthGap | None]:  # fmt: skip
        """A G v2's prior flows ``(m, 2, S, S)`` (None for a plain G): the driver's mesh's
        expression, pose and (``transfer``: no gaze asked for) gaze, or with ``posed``
        (head angles asked for) ``motion``'s pose, and without ``transfer`` the eyes turned
        to ``gaze``; the gaze for the sketch: the transferred one (the first source's)
        where the prior transfers the driver's, else ``gaze``; and the first source's
        mouth gap (None for a plain G)."""
        if self.mesh is None:
            return None, gaze, None
        assert source.meshes is not None
        with self.networks.clock.stage("mesh"):
            driver, reference = None, None
            if held is not None:  # read once, for every source
                driver, reference = self.mesh.read_driver(held.landmarks), held.reference
            driven = [self.mesh.drive(m, driver, reference) for m in source.meshes]
            if posed:  # the requested angles are E_can's motion's
                driven = [None if d is None else replace(d, pose=None) for d in driven]
            if not transfer:  # a gaze was asked for
                driven = [None if d is None else replace(d, gaze_in_head=None) for d in driven]
            carried = self.mesh.transferred(source.meshes[0], motion, driven[0])
            sketch_gaze = gaze if carried is None else carried
            flows, mouth = self.mesh.flows_and_mouth(source.meshes, motion, driven, gaze)
            return flows, sketch_gaze, mouth

    # ------------------------------------------------------------------ gaze
    def edit_eyes(self, source: PreparedSource, angles: np.ndarray) -> np.ndarray:
        """A prepared source's image with its eyes turned to camera-frame (pitch, yaw)
        ``(2,)`` degrees: G re-renders the crop from itself with the new gaze, and only
        the eye regions are pasted back. Reuse the source to try several gazes on one
        image."""
        reading = source.readings[0]
        keypoints = reading.motion.keypoints(source.canonical)
        angles = np.asarray(angles, np.float64)
        prior, _, _ = self._prior(source, reading.motion, None, angles)
        crop = self.networks.render(source.encoding, keypoints, angles, prior)
        mask = eye_mask(reading.keypoints, self.size)
        return paste_back(source.images[0], crop, reading.box, mask)

    def redirect_gaze(self, image_or_frames, pitch: float, yaw: float, face_index: int = 0,
                      fps: float = 25.0, crops: bool = False) -> np.ndarray | Iterator[np.ndarray]:  # fmt: skip
        """Turn the eyes to (pitch, yaw) degrees in the camera frame; only the eye regions
        change. One image -> one image; frames -> a lazy iterator (frames without a face
        pass unchanged; none with a face at all is an error). ``crops``: the input is an
        aligned face crop."""
        return self.look(image_or_frames, GazeControl.fixed(pitch, yaw), face_index, fps,
                         crops=crops)  # fmt: skip

    def eye_contact(self, image_or_frames, face_index: int = 0, fps: float = 25.0):
        """The person looks into the camera; only the eye regions change."""
        return self.look(image_or_frames, GazeControl.camera(), face_index, fps)

    def look(self, image_or_frames, gaze: GazeControl | str, face_index: int = 0,
             fps: float = 25.0, name: str = "the image",
             crops: bool = False) -> np.ndarray | Iterator[np.ndarray]:  # fmt: skip
        """Eyes turned as ``gaze`` says (a :class:`GazeControl`: camera, fixed angles or a
        path over frames; or its text form); only the eye regions change."""
        control = GazeControl.parse(gaze) if isinstance(gaze, str) else gaze
        if control.mode == "transfer":
            raise FreeheadError("gaze editing needs a target gaze (camera, angles or a path)")
        if _is_single_image(image_or_frames):
            source = self.prepare_source(image_or_frames, face_index, [name], crops)
            return self.edit_eyes(source, control.requested(0))
        return self._look_frames(_frames(image_or_frames, name), control, face_index, fps, crops)

    def _look_frames(self, frames: Iterable, control: GazeControl, face_index: int,
                     fps: float, crops: bool) -> Iterator[np.ndarray]:  # fmt: skip
        faces, i = 0, -1
        with self._reader(True, face_index, fps, name="the video", crops=crops) as reader:
            for i, frame in enumerate(frames):
                frame = as_rgb8(frame, f"frame {i}")
                reading = reader(frame)
                if reading is None:
                    yield frame
                    continue
                faces += 1
                source = self._encode([frame], [reading])
                yield self.edit_eyes(source, control.requested(i))
        if faces == 0 and i >= 0:  # frames came, and none had a face: nothing was edited
            raise FreeheadError("no face found in the video")

    # ------------------------------------------------------------------ free view
    def free_view(self, image, yaw: float | None = None, pitch: float | None = None,
                  roll: float | None = None, gaze: GazeControl | str | None = None,
                  paste_back: bool = False) -> np.ndarray:  # fmt: skip
        """The source with its head turned to (yaw, pitch, roll) degrees (None keeps that
        angle); the eyes keep their direction relative to the head unless ``gaze`` is
        given. Returns the crop, or the full image with ``paste_back``."""
        source = self.prepare_source(image)
        options = ReenactOptions(
            yaw=yaw, pitch=pitch, roll=roll, gaze=gaze or GazeControl.transfer(),
            paste_back="source" if paste_back else None,
        ).checked()  # fmt: skip
        inputs = self._inputs(source, source.motion, options, 0, None)
        return self._finish(source, inputs, options, source.images[0], None)
