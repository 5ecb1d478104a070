"""Writing results: images and H.264 videos (with the driving video's audio), atomically.

Videos go through the ffmpeg binary that ships in the ``imageio-ffmpeg`` wheel, fed one
raw frame at a time over a pipe, so memory stays flat in the video's length. The result
is H.264 in yuv420p (plays in browsers and every player) with AAC audio copied from an
input when it has any. Nothing appears at the output path until the video is complete.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from freehead.errors import FreeheadError
from freehead.io_utils import atomic_path
from freehead.media import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)

VIDEO_OUTPUTS = frozenset({".mp4", ".mov", ".mkv"})


def ffmpeg_exe() -> str:
    """The ffmpeg binary: imageio-ffmpeg's, else one on PATH."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        import shutil

        exe = shutil.which("ffmpeg")
        if exe is None:
            raise FreeheadError("no ffmpeg: pip install imageio-ffmpeg") from None
        return exe


def check_output(path: str | Path, kinds: frozenset[str], overwrite: bool,
                 inputs: Sequence[str | Path] = ()) -> Path:  # fmt: skip
    """Refuse an output path of the wrong type, one that exists without ``overwrite``, and
    one that names any of ``inputs`` (the input would be lost)."""
    path = Path(path)
    for given in map(Path, inputs):
        if path.resolve() == given.resolve() or (
            path.exists() and given.exists() and os.path.samefile(path, given)
        ):
            raise FreeheadError(f"{path} is also an input; write the output elsewhere")
    if path.suffix.lower() not in kinds:
        allowed = ", ".join(sorted(kinds))
        raise FreeheadError(f"{path.name}: the output must be one of {allowed}")
    if path.is_dir():
        raise FreeheadError(f"{path} is a folder, not a file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise FreeheadError(f"{parent} is a file, so {path} cannot be written")
            break
    if path.exists() and not overwrite:
        raise FreeheadError(f"{path} exists; pass --overwrite to replace it")
    return path


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB uint8 image atomically (type from the suffix)."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise FreeheadError(f"{path.name}: not an image file type")
    with atomic_path(path, suffix=path.suffix) as tmp:
        # encoded here and written by Python: OpenCV's own writer takes only UTF-8 names
        ok, data = cv2.imencode(path.suffix.lower(), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise FreeheadError(f"could not write {path}")
        tmp.write_bytes(data.tobytes())


def has_audio(path: str | Path) -> bool:
    """Whether a media file has an audio stream (ffmpeg's reading of its header)."""
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    return re.search(r"Stream #\S+.*: Audio:", result.stderr) is not None


class VideoWriter:
    """Append RGB uint8 frames of one size; :meth:`close` finishes the file.

    ``audio_from``: a media file whose first audio stream is copied in (re-encoded to
    AAC, from ``audio_offset`` seconds, cut to the video's length); files without audio
    are fine. Used as a context
    manager, an exception leaves ``path`` as it was.
    """

    def __init__(self, path: str | Path, fps: float, audio_from: str | Path | None = None,
                 audio_offset: float = 0.0, crf: int = 18):  # fmt: skip
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_OUTPUTS:
            raise FreeheadError(f"{self.path.name}: the output video must be .mp4, .mov or .mkv")
        self.fps = float(fps)
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.audio_offset = max(0.0, float(audio_offset))
        self.crf = crf
        self.frames = 0
        self._size: tuple[int, int] | None = None
        self._proc: subprocess.Popen | None = None
        self._atomic = atomic_path(self.path, suffix=self.path.suffix)
        self._tmp = self._atomic.__enter__()
        self._video_only = self._tmp.with_name(self._tmp.stem + ".video" + self.path.suffix)

    def _start(self, width: int, height: int) -> None:
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
            "-r", f"{self.fps:.6g}", "-i", "-",
            "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",  # yuv420p needs even sides
            "-c:v", "libx264", "-preset", "veryfast", "-crf", str(self.crf),
            "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(self._video_only),
        ]  # fmt: skip
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self._size = (width, height)

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 RGB frame (all frames the same size)."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 frames, got {frame.shape} {frame.dtype}")
        h, w = frame.shape[:2]
        if self._proc is None:
            self._start(w, h)
        elif self._size != (w, h):
            raise FreeheadError(f"a frame is {w}x{h} where the video's first were "
                                f"{self._size[0]}x{self._size[1]}: a video's frames must "
                                "share one size")  # fmt: skip
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError:
            raise FreeheadError(f"ffmpeg stopped while writing {self.path}: "
                                f"{self._stderr()}") from None  # fmt: skip
        self.frames += 1

    def _stderr(self) -> str:
        if self._proc is None or self._proc.stderr is None:
            return ""
        text = self._proc.stderr.read().decode(errors="replace").strip()
        return text.splitlines()[-1] if text else "no message"

    def _finish_video(self) -> None:
        if self._proc is None:
            raise FreeheadError(f"no frames to write to {self.path}")
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        if self._proc.wait() != 0:
            raise FreeheadError(f"ffmpeg could not write {self.path}: {self._stderr()}")

    def _mux_audio(self) -> bool:
        """Copy the audio in; False (video kept without audio) when that fails."""
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-i", str(self._video_only),
            "-ss", f"{self.audio_offset:.6f}", "-t", f"{self.frames / self.fps:.6f}",
            "-i", str(self.audio_from),
            "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", "160k",
            "-movflags", "+faststart", str(self._tmp),
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
        if result.returncode != 0:
            log.warning("could not copy the audio of %s; the video has none (%s)",
                        self.audio_from, result.stderr.strip().splitlines()[-1:])  # fmt: skip
            return False
        return True

    def close(self) -> None:
        """Finish the video and move it into place."""
        try:
            self._finish_video()
            if not (
                self.audio_from is not None and has_audio(self.audio_from) and self._mux_audio()
            ):
                os.replace(self._video_only, self._tmp)
        except BaseException as e:
            self._abort(e)
            raise
        self._video_only.unlink(missing_ok=True)
        self._atomic.__exit__(None, None, None)

    def _abort(self, exc: BaseException) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._video_only.unlink(missing_ok=True)
        self._atomic.__exit__(type(exc), exc, exc.__traceback__)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
        else:
            self._abort(exc)


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float,
                audio_from: str | Path | None = None, start: int = 0) -> int:  # fmt: skip
    """Write RGB uint8 frames to an H.264 video atomically -> the frame count.

    ``audio_from``: a media file whose audio is copied in (if it has any) from the time of
    its frame ``start``, so that it stays in sync with frames that begin there. An error
    while frames are made leaves ``path`` as it was."""
    with VideoWriter(path, fps, audio_from=audio_from, audio_offset=start / fps) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.frames
