"""``freehead live``: reenactment of a live stream, frame by frame as frames come.

A capture thread reads the camera (or a video file standing in for one) into a bounded
queue. A live source (a camera, or a file with ``realtime``, paced at its own frame rate)
never waits for the pipeline: when the queue is full the oldest frame is dropped and
counted, so the output never falls behind. A file without ``realtime`` is fed as fast as
the pipeline takes frames, which measures the pipeline's own rate.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from freehead.errors import FreeheadError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveSummary:
    """A live run's figures (see :class:`LiveStats`)."""

    fps: float
    frames: int
    dropped_frames: int
    input_frames: int
    dropped_fraction: float
    input_fps: float
    realtime: bool
    runtime: str
    threads: int


@dataclass
class LiveStats:
    """``fps``: the sustained output rate (outputs after the first, over the time since
    it); ``frames``: outputs; ``dropped_frames``: input frames dropped because the
    pipeline was busy; ``input_frames``: frames read."""

    frames: int = 0
    dropped_frames: int = 0
    input_frames: int = 0
    first_output: float | None = None
    last_output: float | None = None
    input_fps: float = 0.0
    realtime: bool = False

    @property
    def fps(self) -> float:
        if self.frames < 2 or self.first_output is None or self.last_output is None:
            return 0.0
        return (self.frames - 1) / max(self.last_output - self.first_output, 1e-9)

    def output(self) -> None:
        now = time.perf_counter()
        if self.first_output is None:
            self.first_output = now
        self.last_output = now
        self.frames += 1

    def summary(self, runtime: str, threads: int) -> LiveSummary:
        return LiveSummary(
            fps=round(self.fps, 2), frames=self.frames, dropped_frames=self.dropped_frames,
            input_frames=self.input_frames,
            dropped_fraction=round(self.dropped_frames / max(self.input_frames, 1), 4),
            input_fps=round(self.input_fps, 3), realtime=self.realtime, runtime=runtime,
            threads=threads,
        )  # fmt: skip


class FrameFeeder:
    """Reads frames in a thread into a queue of ``depth``; iterate it for the frames.

    ``read`` returns the next RGB frame or None at the end. ``realtime``: frames come at
    ``fps`` whether or not they are taken (a camera; a file is paced to its rate), and the
    oldest waiting frame is dropped when the queue is full; otherwise every frame is
    handed over (the reader waits).
    """

    _END = object()

    def __init__(self, read, fps: float, realtime: bool, stats: LiveStats, depth: int = 2,
                 paced: bool = True):  # fmt: skip
        self._read = read
        self.fps = fps
        self.realtime = realtime
        self.paced = paced
        self.stats = stats
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="freehead-capture", daemon=True)

    def _put_live(self, item: object) -> None:
        while True:
            try:
                self._q.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._q.get_nowait()
                    self.stats.dropped_frames += 1
                except queue.Empty:
                    pass

    def _put_waiting(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        start = time.perf_counter()
        try:
            n = 0
            while not self._stop.is_set():
                if self.realtime and self.paced:  # a file standing in for a camera
                    delay = start + n / self.fps - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                frame = self._read()
                if frame is None:
                    break
                n += 1
                self.stats.input_frames += 1
                (self._put_live if self.realtime else self._put_waiting)(frame)
        except BaseException as e:  # handed to the consumer
            self._error = e
        finally:
            if self.realtime:
                self._put_live(self._END)
            else:
                self._put_waiting(self._END)

    def __iter__(self) -> Iterator[np.ndarray]:
        self._thread.start()
        try:
            while True:
                item = self._q.get()
                if item is self._END:
                    if self._error is not None:
                        raise self._error
                    return
                yield item
        finally:
            self._stop.set()
            self._thread.join(timeout=5)


def open_live_input(camera: int | None, driving: str | None):
    """-> (read function returning RGB frames or None, fps, is a camera, close function)."""
    import cv2

    from freehead.media import open_frames, rgb8_from_opencv

    if camera is not None:
        from freehead.io_utils import quiet_native_stderr

        with quiet_native_stderr():  # OpenCV logs each backend it tries
            cap = cv2.VideoCapture(camera)
            opened = cap.isOpened()
        if not opened:
            raise FreeheadError(f"no camera {camera} (this machine may have none; "
                                "--driving VIDEO stands in for one)")  # fmt: skip
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or 30.0

        def read_camera():
            ok, frame = cap.read()
            return rgb8_from_opencv(frame) if ok else None

        return read_camera, fps, True, cap.release
    assert driving is not None
    source = open_frames(driving)
    frames = source.frames()

    def read_file():
        return next(frames, None)

    return read_file, source.fps, False, frames.close


def has_display() -> bool:
    """Whether a desktop is there to open a window on."""
    import os

    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class Display:
    """A window showing the output with its frame rate (needs a desktop)."""

    def __init__(self, title: str = "freehead live"):
        import cv2

        if not has_display():
            raise FreeheadError("no display to show the output on")
        self.cv2, self.title = cv2, title

    def show(self, frame: np.ndarray, fps: float) -> bool:
        """Show a frame; False when the user closes the window or presses q/Esc."""
        cv2 = self.cv2
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        cv2.putText(bgr, f"{fps:.1f} fps", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 0), 1,
                    cv2.LINE_AA)  # fmt: skip
        cv2.imshow(self.title, bgr)
        key = cv2.waitKey(1) & 0xFF
        return key not in (ord("q"), 27)

    def close(self) -> None:
        self.cv2.destroyAllWindows()


class VirtualCamera:
    """The output as a virtual webcam (pyvirtualcam; v4l2loopback on Linux, OBS elsewhere)."""

    def __init__(self, width: int, height: int, fps: float):
        try:
            import pyvirtualcam
        except ImportError:
            raise FreeheadError("a virtual camera needs pyvirtualcam (pip install pyvirtualcam) "
                                "and a virtual camera device") from None  # fmt: skip
        try:
            self.cam = pyvirtualcam.Camera(width=width, height=height, fps=fps)
        except Exception as e:  # no device
            raise FreeheadError(f"could not open a virtual camera: {e}") from e
        log.info("virtual camera: %s", self.cam.device)

    def send(self, frame: np.ndarray) -> None:
        self.cam.send(np.ascontiguousarray(frame))

    def close(self) -> None:
        self.cam.close()


@dataclass(frozen=True)
class LiveOptions:
    """Where the live frames come from and go. ``camera`` (an index) or ``driving`` (a
    video standing in for a camera, paced at its own rate with ``realtime``); ``display``
    (None: when there is a desktop); ``virtual_camera``; ``out``: a video to record (checked
    by the caller); ``max_frames``: stop after this many outputs."""

    camera: int | None = None
    driving: str | None = None
    realtime: bool = False
    display: bool | None = None
    virtual_camera: bool = False
    out: Path | None = None
    max_frames: int | None = None

    def checked(self) -> LiveOptions:
        if (self.camera is None) == (self.driving is None):
            raise FreeheadError("live needs either a camera or a driving video")
        if self.realtime and self.driving is None:
            raise FreeheadError("real-time pacing is for a driving video; a camera is real time")
        if self.max_frames is not None and self.max_frames < 1:
            raise FreeheadError("the live frame limit must be at least 1")
        return self


def _shown(frames: Iterable[np.ndarray], stats: LiveStats, options: LiveOptions,
           fps: float) -> Iterator[np.ndarray]:  # fmt: skip
    """The output frames, counted, shown and sent to the virtual camera as they pass;
    stops when the window is closed or at ``max_frames``."""
    show = has_display() if options.display is None else options.display
    if options.display is None and not show:
        log.info("no display: the output is not shown, the frame rate is logged")
    display = Display() if show else None
    vcam: VirtualCamera | None = None
    last_log = time.perf_counter()
    try:
        for frame in frames:
            stats.output()
            if options.virtual_camera:
                vcam = vcam or VirtualCamera(frame.shape[1], frame.shape[0], fps)
                vcam.send(frame)
            yield frame
            if display is not None and not display.show(frame, stats.fps):
                return
            if time.perf_counter() - last_log >= 2.0:
                log.info("live: %.1f fps, %d frames, %d dropped", stats.fps, stats.frames,
                         stats.dropped_frames)  # fmt: skip
                last_log = time.perf_counter()
            if options.max_frames is not None and stats.frames >= options.max_frames:
                return
    finally:
        for closer in (display, vcam, frames):  # frames: stops the reading threads
            close = getattr(closer, "close", None)
            if close is not None:
                close()


def run_live(reenactor, sources: Sequence[np.ndarray], reenact_options, options: LiveOptions,
             source_face_index: int = 0, source_names: list[str] | None = None,
             threads: int = 1) -> LiveSummary:  # fmt: skip
    """Reenact a live feed until it ends, the window closes or ``max_frames`` outputs;
    records to ``options.out`` when given. Returns the run's figures."""
    from freehead.apps.video import write_video

    options = options.checked()
    source = reenactor.prepare_source(list(sources), source_face_index, source_names)
    read, fps, is_camera, close_input = open_live_input(options.camera, options.driving)
    realtime = is_camera or options.realtime
    stats = LiveStats(input_fps=fps, realtime=realtime)
    feeder = FrameFeeder(read, fps, realtime, stats, paced=not is_camera)
    try:
        frames = _shown(reenactor.stream(source, feeder, reenact_options, fps=fps), stats,
                        options, fps)  # fmt: skip
        if options.out is not None:
            write_video(options.out, frames, fps)
        else:
            for _ in frames:
                pass
    finally:
        close_input()
    return stats.summary(reenactor.runtime, threads)
