"""Reading frames from videos, image folders and single images, with clear errors.

Frames come out as ``(H, W, 3)`` uint8 RGB, one at a time, so memory stays flat in the
length of the video. Grayscale, RGBA and 16-bit images are converted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # ffmpeg's own messages: off

import cv2
import numpy as np

from freehead.errors import FreeheadError
from freehead.io_utils import quiet_native_stderr

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
MAX_PIXELS = 8192 * 8192
"""Larger inputs are refused: they are almost surely a mistake and would exhaust memory."""


def rgb8_from_opencv(image: np.ndarray) -> np.ndarray:
    """An image as OpenCV decodes it (gray, BGR, BGRA; 8 or 16 bit) -> RGB uint8. For
    arrays a user hands over (RGB order), :func:`as_rgb8`."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image.astype(np.float64) * 255.0, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[..., 0], cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB, or raise FreeheadError."""
    path = Path(path)
    if not path.is_file():
        raise FreeheadError(f"no such image file: {path}")
    _check_image_size(path)
    data = np.fromfile(path, dtype=np.uint8)
    with quiet_native_stderr():  # libpng warns of harmless colour-profile quirks
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise FreeheadError(f"{path} is not a readable image")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise FreeheadError(f"{path} is {image.shape[1]}x{image.shape[0]}: too large")
    return rgb8_from_opencv(image)


def _check_image_size(path: Path) -> None:
    """Refuse a too large image from its header, before decoding it."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # the check below replaces PIL's own warning
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (UnidentifiedImageError, OSError, ValueError):
        return  # OpenCV may still read it; its failure is reported there
    if w * h > MAX_PIXELS:
        raise FreeheadError(f"{path} is {w}x{h}: too large")


@dataclass(frozen=True)
class FrameSource:
    """A clip's frames: a video file, a folder of images in name order, or one image.

    ``fps`` is the video's rate (25 for images); ``num_frames`` the count announced by the
    container (videos) or found (images).
    """

    path: Path
    kind: str  # "video" | "images" | "image"
    fps: float
    num_frames: int

    def frames(self, limit: int | None = None, start: int = 0) -> Iterator[np.ndarray]:
        """Yield up to ``limit`` frames from frame ``start`` (a video is decoded from its
        beginning, so frame numbers are exact). A video that ends early (fewer frames than
        its container announces: truncated or corrupt) gives the frames it has, and a
        warning says how many."""
        if self.kind == "video":
            yield from self._video_frames(limit, start)
        else:
            files = image_files(self.path) if self.kind == "images" else [self.path]
            for f in files[start : None if limit is None else start + limit]:
                yield read_image(f)

    def _video_frames(self, limit: int | None, start: int) -> Iterator[np.ndarray]:
        with quiet_native_stderr():
            cap = cv2.VideoCapture(str(self.path))
        end = None if limit is None else start + limit
        try:
            if not cap.isOpened():
                raise FreeheadError(f"{self.path} is not a readable video")
            wanted = self.num_frames if end is None else min(end, self.num_frames)
            n = 0
            while end is None or n < end:
                ok, frame = cap.read()
                if not ok:
                    break
                n += 1
                if n > start:
                    yield rgb8_from_opencv(frame)
            # Containers may announce a frame or two more than they hold; more is damage,
            # and what was readable is used, as players use it.
            if wanted - n > max(2, wanted // 100):
                log.warning("%s is truncated or corrupt: it ends at frame %d of %d; used the "
                            "%d readable frame(s)", self.path, n, wanted, max(n - start, 0))  # fmt: skip
        finally:
            cap.release()


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def open_frames(path: str | Path) -> FrameSource:
    """Open a video, an image folder or an image; FreeheadError when it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise FreeheadError(f"no such file or folder: {path}")
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise FreeheadError(f"{path} holds no images")
        return FrameSource(path=path, kind="images", fps=25.0, num_frames=len(files))
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        read_image(path)  # fail now, with the file's name, if it is not an image
        return FrameSource(path=path, kind="image", fps=25.0, num_frames=1)
    if suffix not in VIDEO_EXTENSIONS:
        raise FreeheadError(f"{path}: unsupported file type {suffix or '(none)'}")
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:  # OpenCV's video reader takes only UTF-8 names
        raise FreeheadError(f"{path!s}: the video's name is not UTF-8; rename it") from None
    with quiet_native_stderr():  # OpenCV's demuxers print about broken files themselves
        cap = cv2.VideoCapture(str(path))
        try:
            ok = cap.isOpened()
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if ok else 0
            fps = float(cap.get(cv2.CAP_PROP_FPS)) if ok else 0.0
            w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            first_ok = ok and cap.read()[0]
        finally:
            cap.release()
    if not first_ok:
        raise FreeheadError(f"{path} is not a readable video (corrupt, truncated or not a video)")
    if w * h > MAX_PIXELS:
        raise FreeheadError(f"{path} is {w}x{h}: too large")
    if not (0 < fps < 1000):
        fps = 25.0
    return FrameSource(path=path, kind="video", fps=fps, num_frames=max(count, 1))


MIN_SIDE = 32
"""Images with a side shorter than this are refused: no face can be read in them."""


def as_rgb8(image, name: str = "image") -> np.ndarray:
    """An image a user hands over: a numpy array (RGB or RGBA order; gray; uint8, uint16, bool or float in [0, 1]) or a
    PIL image -> ``(H, W, 3)`` uint8 RGB. FreeheadError for anything else, or a side
    under :data:`MIN_SIDE` or over :data:`MAX_PIXELS` pixels. (Decoded files:
    :func:`rgb8_from_opencv`.)"""
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
