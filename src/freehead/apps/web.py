"""``freehead serve``: the web page.

Built on Gradio, the web UI library of the ML ecosystem: LivePortrait, face-vid2vid demos and
most Hugging Face Spaces use it, so our users know it. It gives upload widgets, sliders, a
progress bar and a request queue (several users wait their turn) without a front end of
our own to maintain.

Two tabs:

* **Reenact**: a portrait and a driving video (or the samples) in, a video out, with gaze
  (transfer, into the camera, or pitch/yaw sliders), pose overrides, relative or absolute
  motion, paste-back and smoothing.
* **Gaze**: one image; the eyes follow the sliders as they move.

Uploads are checked before any work: size, type (the file is opened as an image or a
video, not judged by its name), and names with path parts are refused. The page never
reads or writes a path a user gives: uploads are in Gradio's own cache, outputs in a
fresh folder per request under the server's work folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from freehead.errors import FreeheadError

log = logging.getLogger(__name__)

MAX_UPLOAD_MB = 50
MAX_SECONDS = 20.0
"""Driving videos are cut to this length, to keep the queue moving."""


def path_like(name: str) -> bool:
    """Whether an uploaded file's name has path parts (or is hidden)."""
    return "/" in name or "\\" in name or ".." in name or name.startswith(".")


def check_upload(path: str | Path | None, what: str, kind: str, max_mb: float) -> Path:
    """An uploaded file, or FreeheadError with a message for the page."""
    from freehead.media import open_frames

    if path is None:
        raise FreeheadError(f"upload a {what} first")
    path = Path(path)
    if not path.is_file():
        raise FreeheadError(f"the {what} upload is missing; upload it again")
    if path_like(path.name):
        raise FreeheadError(f"the file name {path.name!r} has path parts; rename the file")
    size_mb = path.stat().st_size / 1e6
    if size_mb > max_mb:
        raise FreeheadError(f"the {what} is {size_mb:.0f} MB; the limit is {max_mb:g} MB")
    try:
        source = open_frames(path)
    except FreeheadError as e:  # say it with the file's name, not the server's path
        raise FreeheadError(str(e).replace(str(path), repr(path.name))) from None
    if kind == "video" and source.kind != "video":
        raise FreeheadError(f"the {what} must be a video (mp4, mov, mkv, webm, avi)")
    if kind == "image" and source.kind != "image":
        raise FreeheadError(f"the {what} must be an image (jpg, png, webp, bmp, tif)")
    return path


WORK = "freehead"
"""The one queue every model-running event shares: one job at a time on the CPU."""

KEEP_RESULTS = 16
"""Result folders kept in the work folder (Gradio serves its own copy of each result)."""


def _face_index(value) -> int:
    """The page's face number as an index, or FreeheadError."""
    try:
        index = float(value if value is not None else 0)
    except (TypeError, ValueError):
        raise FreeheadError("the face number must be a whole number") from None
    if not index.is_integer() or index < 0:
        raise FreeheadError("the face number must be a whole number, 0 or more")
    return int(index)


def prune(work: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` result folders."""
    results = sorted(work.glob("result-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in results[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def sample_files(samples: Path, workdir: Path) -> tuple[Path, Path]:
    """The astronaut portrait and a 4-second held-out franck clip, in ``workdir``."""
    from freehead.apps.demo import DRIVER_START, sample_paths
    from freehead.apps.video import write_video
    from freehead.media import open_frames

    portrait, video = sample_paths(samples)
    # copies in the work folder, the one place the page hands files from
    portrait_copy = workdir / "astronaut.png"
    if not portrait_copy.is_file():
        shutil.copyfile(portrait, portrait_copy)
    clip = workdir / f"franck_{DRIVER_START}.mp4"
    if not clip.is_file():
        source = open_frames(video)
        write_video(clip, source.frames(round(4 * source.fps), DRIVER_START), source.fps)
    return portrait_copy, clip


def _upload_file(gr, **kwargs):
    """A gr.File that refuses an upload whose name, as the browser sent it, has path
    parts. (Gradio keeps only the last part when it stores the file, so nothing would
    reach another folder; the user still hears that the name was refused.)"""
    component = gr.File(**kwargs)
    original = component.preprocess

    def preprocess(payload):
        name = str(getattr(payload, "orig_name", None) or "")
        if path_like(name):
            raise gr.Error(f"the file name {name!r} has path parts (/, \\ or ..); "
                           "rename the file and upload it again")  # fmt: skip
        return original(payload)

    component.preprocess = preprocess
    return component


class PageJobs:
    """What the page's buttons and sliders run; each turns a FreeheadError into a message
    on the page (``gr.Error``)."""

    def __init__(self, reenactor, work: Path, samples: Path, max_upload_mb: float,
                 max_seconds: float):  # fmt: skip
        import gradio as gr

        self.gr, self.reenactor, self.work, self.samples = gr, reenactor, work, samples
        self.max_upload_mb, self.max_seconds = max_upload_mb, max_seconds

    def options(self, motion, gaze_mode, pitch, yaw, fix_pose, head_yaw, head_pitch, head_roll,
                paste, smooth):  # fmt: skip
        """The page's controls as :class:`ReenactOptions`, numbers kept numbers."""
        from freehead.inference.gaze import GazeControl
        from freehead.inference.reenactor import ReenactOptions

        gaze = {"transfer": GazeControl.transfer, "camera": GazeControl.camera}.get(
            gaze_mode, lambda: GazeControl.fixed(pitch, yaw)
        )()
        try:
            pose = (
                (float(head_yaw), float(head_pitch), float(head_roll)) if fix_pose else (None,) * 3
            )
            smooth = float(smooth)
        except (TypeError, ValueError):
            raise FreeheadError("the head angles and smoothing must be numbers") from None
        return ReenactOptions(
            relative=motion == "relative", gaze=gaze, yaw=pose[0], pitch=pose[1], roll=pose[2],
            paste_back="source" if paste else None, smoothing=smooth,
        ).checked()  # fmt: skip

    def reenact(self, portrait, driving, *controls, face_index=0, progress=None):
        """The Reenact tab's job: ``face_index`` picks the portrait's face (0 = the
        largest, as :meth:`faces` numbers them)."""
        from freehead.apps.video import write_video
        from freehead.media import open_frames, read_image

        try:
            portrait_path = check_upload(portrait, "portrait", "image", self.max_upload_mb)
            driving_path = check_upload(driving, "driving video", "video", self.max_upload_mb)
            options = self.options(*controls)
            index = _face_index(face_index)
            video = open_frames(driving_path)
            total = min(video.num_frames, max(1, round(self.max_seconds * video.fps)))
            source = self.reenactor.prepare_source(read_image(portrait_path), index,
                                                   ["the portrait"])  # fmt: skip
            prune(self.work, keep=KEEP_RESULTS)
            out = Path(tempfile.mkdtemp(dir=self.work, prefix="result-")) / "freehead.mp4"
            frames = self.reenactor.reenact_frames(source, video.frames(total), options,
                                                   video.fps)  # fmt: skip
            count = write_video(out, _progressed(frames, total, progress), video.fps,
                                audio_from=driving_path)  # fmt: skip
            cut = f" (the first {self.max_seconds:g} s)" if total < video.num_frames else ""
            return str(out), f"{count} frames{cut}"
        except FreeheadError as e:
            raise self.gr.Error(str(e)) from None

    def faces(self, portrait):
        """When the uploaded portrait holds several faces: the portrait with each face
        boxed and numbered (what the face number picks), and a line saying so; else
        nothing to show."""
        from freehead.apps.faces import draw_faces, faces_in
        from freehead.media import read_image

        if portrait is None:
            return None, ""
        try:
            image = read_image(check_upload(portrait, "portrait", "image", self.max_upload_mb))
        except FreeheadError:
            return None, ""  # the job itself says what is wrong with the upload
        found = faces_in(image)
        if len(found) < 2:
            return None, ""
        return draw_faces(image, found), (f"{len(found)} faces in the portrait: give the "
                                           "number of the one to animate (0 = the largest).")  # fmt: skip

    def edit_gaze(self, image, pitch, yaw):
        if image is None:
            return None
        try:
            return self.reenactor.redirect_gaze(np.asarray(image), pitch, yaw)
        except FreeheadError as e:
            raise self.gr.Error(str(e)) from None

    def use_samples(self):
        portrait, clip = sample_files(self.samples, self.work)
        return str(portrait), str(clip)


def _progressed(frames, total: int, progress):
    if progress is not None:
        progress(0, desc="reenacting")
    for i, frame in enumerate(frames):
        yield frame
        if progress is not None:
            progress((i + 1) / total, desc=f"frame {i + 1} of {total}")


def _reenact_tab(gr, jobs: PageJobs) -> None:
    with gr.Row():
        portrait = _upload_file(gr, label="Portrait (image)", file_types=["image"],
                                elem_id="portrait")  # fmt: skip
        driving = _upload_file(gr, label="Driving video", file_types=["video"],
                               elem_id="driving")  # fmt: skip
    samples_button = gr.Button("Use the samples (astronaut, franck)", elem_id="samples")
    with gr.Row():
        motion = gr.Radio(["relative", "absolute"], value="relative", label="Motion")
        gaze_mode = gr.Radio(["transfer", "camera", "pitch/yaw"], value="transfer",
                             label="Gaze", elem_id="gaze_mode")  # fmt: skip
    with gr.Row():
        pitch = gr.Slider(-30, 30, value=0, step=1, label="Gaze pitch (°, up > 0)",
                          elem_id="gaze_pitch")  # fmt: skip
        yaw = gr.Slider(-30, 30, value=0, step=1, label="Gaze yaw (°, their right > 0)",
                        elem_id="gaze_yaw")  # fmt: skip
    with gr.Accordion("Head pose and smoothing", open=False):
        fix_pose = gr.Checkbox(False, label="Fix the head pose to the sliders")
        head_yaw = gr.Slider(-45, 45, value=0, step=1, label="Head yaw (°)")
        head_pitch = gr.Slider(-30, 30, value=0, step=1, label="Head pitch (°)")
        head_roll = gr.Slider(-30, 30, value=0, step=1, label="Head roll (°)")
        smooth = gr.Slider(0, 3, value=1, step=0.1, label="Smoothing (0 = off)")
    with gr.Row():
        face = gr.Number(0, precision=0, minimum=0, label="Face (0 = the largest)",
                         elem_id="face")  # fmt: skip
        faces_note = gr.Markdown(elem_id="faces_note")
    faces_view = gr.Image(label="Faces in the portrait", interactive=False, elem_id="faces",
                          height=240)  # fmt: skip
    portrait.change(jobs.faces, portrait, [faces_view, faces_note], concurrency_id=WORK)
    paste = gr.Checkbox(True, label="Paste back into the portrait's frame")
    run_button = gr.Button("Reenact", variant="primary", elem_id="run")
    result = gr.Video(label="Result", elem_id="result")
    note = gr.Markdown(elem_id="note")
    samples_button.click(jobs.use_samples, None, [portrait, driving])

    def reenact(portrait, driving, motion, gaze_mode, pitch, yaw, fix_pose, head_yaw, head_pitch,
                head_roll, paste, smooth, face, progress=gr.Progress()):  # noqa: B008  # fmt: skip
        controls = (motion, gaze_mode, pitch, yaw, fix_pose, head_yaw, head_pitch, head_roll,
                    paste, smooth)  # fmt: skip
        return jobs.reenact(portrait, driving, *controls, face_index=face, progress=progress)

    run_button.click(reenact, [portrait, driving, motion, gaze_mode, pitch, yaw, fix_pose,
                               head_yaw, head_pitch, head_roll, paste, smooth, face],
                     [result, note], concurrency_id=WORK)  # fmt: skip


def _gaze_tab(gr, jobs: PageJobs) -> None:
    with gr.Row():
        image = gr.Image(label="Image", type="numpy", sources=["upload"], elem_id="image")
        edited = gr.Image(label="Eyes turned", elem_id="edited")
    g_pitch = gr.Slider(-25, 25, value=0, step=1, label="Pitch (°)", elem_id="g_pitch")
    g_yaw = gr.Slider(-25, 25, value=0, step=1, label="Yaw (°)", elem_id="g_yaw")
    camera = gr.Button("Look into the camera")
    for control in (g_pitch, g_yaw):  # live: the newest position wins when busy
        control.change(jobs.edit_gaze, [image, g_pitch, g_yaw], edited, concurrency_id=WORK,
                       trigger_mode="always_last", show_progress="hidden")  # fmt: skip
    image.upload(jobs.edit_gaze, [image, g_pitch, g_yaw], edited, concurrency_id=WORK)
    camera.click(lambda im: jobs.edit_gaze(im, 0, 0), image, edited, concurrency_id=WORK)


def build_app(reenactor, samples: str | Path = "data/samples", workdir: str | Path | None = None,
              max_upload_mb: float = MAX_UPLOAD_MB, max_seconds: float = MAX_SECONDS):  # fmt: skip
    """The Gradio Blocks of the page (not launched)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    work = Path(workdir or tempfile.mkdtemp(prefix="freehead-serve-"))
    work.mkdir(parents=True, exist_ok=True)
    jobs = PageJobs(reenactor, work, Path(samples), max_upload_mb, max_seconds)
    with gr.Blocks(title="freehead") as app:
        gr.Markdown("# freehead\nTalking heads with explicit gaze control. Everything runs on "
                    "this machine.")  # fmt: skip
        with gr.Tab("Reenact"):
            _reenact_tab(gr, jobs)
        with gr.Tab("Gaze"):
            _gaze_tab(gr, jobs)
    app.queue(default_concurrency_limit=1, max_size=16)
    app.freehead_workdir = work
    return app


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Have glibc's malloc keep at most ``arenas`` arenas. The page runs each job on one
    of the server's many worker threads, and glibc gives every thread that allocates its
    own arena, which it keeps: the server's memory grew by about 100 MB for every eight
    jobs, slowing only after 40 (``tests/test_web.py``). Elsewhere than glibc, nothing."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "mallopt"):
            libc.mallopt(-8, arenas)  # M_ARENA_MAX
    except OSError:
        pass


def serve(reenactor, host: str = "127.0.0.1", port: int = 7860, samples: str | Path = "data/samples",
          max_upload_mb: float = MAX_UPLOAD_MB) -> None:  # fmt: skip
    """Build the page and serve it until interrupted."""
    if not (0 < port < 65536):
        raise FreeheadError("the port must be between 1 and 65535")
    if max_upload_mb <= 0:
        raise FreeheadError("the upload limit must be positive")
    limit_malloc_arenas()
    app = build_app(reenactor, samples, max_upload_mb=max_upload_mb)
    if host not in ("127.0.0.1", "localhost"):
        log.warning("serving on %s: anyone who can reach this machine can use the page", host)
    app.launch(server_name=host, server_port=port, share=False, inbrowser=False,
               max_file_size=f"{max_upload_mb:g}mb",
               allowed_paths=[str(app.freehead_workdir)], show_error=True)  # fmt: skip
