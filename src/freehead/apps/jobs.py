"""File-to-file jobs behind the CLI's inference commands: read the inputs, run a
:class:`~freehead.inference.reenactor.Reenactor` mode, stream frames to the output with
progress.

Every job checks its output path first (type, ``overwrite``) and writes atomically, so
a failure leaves what the user had untouched.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from freehead.apps.video import VIDEO_OUTPUTS, check_output, write_image, write_video
from freehead.errors import FreeheadError
from freehead.inference.gaze import GazeControl
from freehead.inference.reenactor import PreparedSource, ReenactOptions, Reenactor
from freehead.media import IMAGE_EXTENSIONS, FrameSource, open_frames, read_image

IMAGE_OUTPUTS = frozenset(IMAGE_EXTENSIONS)


@dataclass(frozen=True)
class JobResult:
    """What a job wrote: ``output`` path, ``frames`` (1 for an image), the video's
    ``fps`` (None for an image) and, for a free-view grid, its ``views``."""

    output: str
    frames: int
    fps: float | None = None
    views: int | None = None


def _frames(
    source: FrameSource, start: int, max_frames: int | None, progress: bool, what: str
) -> Iterator[np.ndarray]:
    """A video's frames from ``start`` (at most ``max_frames``), with a progress bar."""
    if start < 0 or (max_frames is not None and max_frames < 1):
        raise FreeheadError("the first frame must be >= 0 and the frame count >= 1")
    if start >= source.num_frames:
        raise FreeheadError(
            f"{source.path} has {source.num_frames} frames; frame {start} is past its end"
        )
    total = source.num_frames - start
    if max_frames is not None:
        total = min(total, max_frames)

    def gen() -> Iterator[np.ndarray]:
        with tqdm(total=total, disable=not progress, unit="frame", desc=what, leave=False) as bar:
            for frame in source.frames(total, start):
                bar.update(1)
                yield frame

    return gen()


def reenact_file(
    reenactor: Reenactor,
    sources: Sequence[str | Path],
    driving: str | Path,
    out: str | Path,
    options: ReenactOptions,
    source_face_index: int = 0,
    overwrite: bool = False,
    start: int = 0,
    max_frames: int | None = None,
    progress: bool = False,
) -> JobResult:
    """Reenact source image(s) with a driving video (or image); write a video (or image)."""
    driver = open_frames(driving)
    single = driver.kind == "image"
    out = check_output(out, IMAGE_OUTPUTS if single else VIDEO_OUTPUTS, overwrite,
                       [*sources, driving])  # fmt: skip
    source_images = [_read_source(Path(p)) for p in sources]
    src = reenactor.prepare_source(source_images, source_face_index, [str(p) for p in sources])
    if single:
        image = reenactor.reenact(src, read_image(driving), options)  # absolute: one image
        assert isinstance(image, np.ndarray)
        write_image(out, image)
        return JobResult(str(out), 1)
    frames = _frames(driver, start, max_frames, progress, "reenact")
    results = reenactor.reenact_frames(src, frames, options, driver.fps)
    audio = Path(driving) if driver.kind == "video" else None
    return JobResult(str(out), write_video(out, results, driver.fps, audio, start), driver.fps)


def _read_source(path: Path) -> np.ndarray:
    """A source image; the first frame of a video is taken for a video."""
    frames = open_frames(path)
    if frames.kind == "images":
        raise FreeheadError(f"{path} is a folder; give source images one by one")
    return next(frames.frames(1))


def gaze_file(
    reenactor: Reenactor,
    path: str | Path,
    out: str | Path,
    control: GazeControl,
    face_index: int = 0,
    overwrite: bool = False,
    start: int = 0,
    max_frames: int | None = None,
    progress: bool = False,
) -> JobResult:
    """Turn the eyes of an image or a video (eye contact: ``GazeControl.camera()``)."""
    media = open_frames(path)
    if media.kind == "image":
        out = check_output(out, IMAGE_OUTPUTS, overwrite, [path])
        if control.mode == "path":
            raise FreeheadError("a gaze path (.csv) needs a video, not an image")
        image = reenactor.look(read_image(path), control, face_index, name=str(path))
        assert isinstance(image, np.ndarray)
        write_image(out, image)
        return JobResult(str(out), 1)
    out = check_output(out, VIDEO_OUTPUTS, overwrite, [path])
    frames = _frames(media, start, max_frames, progress, "gaze")
    results = reenactor.look(frames, control, face_index, media.fps)
    audio = Path(path) if media.kind == "video" else None
    return JobResult(str(out), write_video(out, results, media.fps, audio, start), media.fps)


def freeview_file(
    reenactor: Reenactor,
    path: str | Path,
    out: str | Path,
    yaws: Sequence[float],
    pitches: Sequence[float],
    overwrite: bool = False,
    fps: float = 25.0,
    seconds: float = 4.0,
) -> JobResult:
    """A free-view sweep of one image: a grid (rows = pitch, columns = yaw) as an image,
    or, for a video output, the head turning through the yaws and pitches (a loop)."""
    out = check_output(out, IMAGE_OUTPUTS | VIDEO_OUTPUTS, overwrite, [path])
    source = reenactor.prepare_source(read_image(path), names=[str(path)])
    if out.suffix.lower() in IMAGE_OUTPUTS:
        grid = freeview_grid(reenactor, source, yaws, pitches)
        write_image(out, grid)
        return JobResult(str(out), 1, views=len(yaws) * len(pitches))
    n = max(2, round(fps * seconds))
    t = np.arange(n) / n * 2 * np.pi
    yaw_path = np.interp(np.sin(t), [-1, 1], [min(yaws), max(yaws)])
    pitch_path = np.interp(np.sin(2 * t), [-1, 1], [min(pitches), max(pitches)])
    frames = (
        reenactor.free_view(source, yaw=float(y), pitch=float(p))
        for y, p in zip(yaw_path, pitch_path, strict=True)
    )
    return JobResult(str(out), write_video(out, frames, fps), fps)


def freeview_grid(reenactor: Reenactor, source: PreparedSource, yaws: Sequence[float],
                  pitches: Sequence[float]) -> np.ndarray:  # fmt: skip
    """Crops of the source at each (pitch, yaw), captioned, rows = pitches."""
    rows = []
    for p in pitches:
        row = [caption(reenactor.free_view(source, yaw=y, pitch=p), f"yaw {y:+g} pitch {p:+g}")
               for y in yaws]  # fmt: skip
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)


def gaze_grid(reenactor: Reenactor, image: np.ndarray, yaws: Sequence[float],
              pitches: Sequence[float]) -> np.ndarray:  # fmt: skip
    """The image's face crop with the eyes at each (pitch, yaw), captioned."""
    from freehead.perception.crop import crop_image

    source = reenactor.prepare_source(image)
    box = source.readings[0].box
    rows = []
    for p in pitches:
        row = []
        for y in yaws:
            edited = reenactor.edit_eyes(source, np.array([p, y]))
            row.append(caption(crop_image(edited, box, reenactor.size), f"gaze {p:+g},{y:+g}"))
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)


def caption(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of the image with a caption on a dark band at the bottom."""
    out = image.copy()
    h = out.shape[0]
    band = max(14, h // 14)
    out[h - band :] = (out[h - band :].astype(np.float32) * 0.35).astype(np.uint8)
    scale = band / 30
    cv2.putText(out, text, (4, h - band // 4 - 1), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
    return out


def parse_angles(text: str, what: str) -> list[float]:
    """``-30,-15,0,15,30`` -> floats within ±90."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise FreeheadError(f"{what}: expected numbers separated by commas, got {text!r}") from None
    if not values or any(not np.isfinite(v) or abs(v) > 90 for v in values):
        raise FreeheadError(f"{what}: angles must be between -90 and 90 degrees")
    return values
