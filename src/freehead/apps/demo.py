"""``freehead demo``: the shipped model on the sample data, start to finish.

Writes into one folder:

* ``reenact.mp4``: the astronaut portrait driven by a held-out franck clip (frames from
  4000, never trained on), relative motion, gaze transferred, pasted back into the
  portrait (with the clip's audio when it has any);
* ``gaze_grid.png``: the astronaut's eyes turned over a pitch x yaw grid;
* ``freeview_grid.png``: her head turned over a yaw x pitch grid;
* ``summary.json``: what the labeller (the evaluation suite's measurer) reads on the
  video: how closely the output follows the driver's head and gaze, and how far it stays
  from the portrait's identity; and the time per frame. The same figures for
  ``meshwarp`` (no learning: the portrait warped along the face mesh) on the same frames
  sit beside them, under ``meshwarp``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from freehead.errors import FreeheadError

log = logging.getLogger(__name__)

DRIVER_START = 4000
"""The held-out franck frames start here (the standard split)."""

OUTPUTS = ("reenact.mp4", "gaze_grid.png", "freeview_grid.png", "summary.json")


def sample_paths(folder: Path) -> tuple[Path, Path]:
    """The astronaut portrait and franck.mp4, fetched into ``folder`` when missing."""
    from freehead.data.samples import fetch_samples

    portrait = folder / "portraits" / "astronaut.png"
    video = folder / "videos" / "franck" / "franck.mp4"
    if not (portrait.is_file() and video.is_file()):
        log.info("fetching the sample data into %s", folder)
        fetch_samples(folder)
    return portrait, video


@dataclass(frozen=True)
class FollowFigures:
    """How an output video follows its driver (see :func:`follow_figures`)."""

    measured_frames: int
    head_motion_error_deg: float
    driver_head_motion_deg: float
    gaze_in_head_error_deg: float | None
    portrait_gaze_in_head_error_deg: float | None
    identity_distance_to_portrait: float | None


def _mean(values: list[float], digits: int) -> float | None:
    return round(float(np.mean(values)), digits) if values else None


def follow_figures(
    outputs: list[np.ndarray], drivers: list[np.ndarray], portrait: np.ndarray
) -> FollowFigures:
    """How an output video follows its driver, as the labeller reads both.

    Head: the change of (yaw, pitch, roll) since the first frame, output vs driver
    (mean absolute difference, degrees), beside the driver's own mean change (what copying
    the portrait would score). Gaze: the angle between output and driver gaze, both
    relative to the head, beside the same for the portrait's own gaze. Identity: dlib distance of each output to the portrait.
    """
    from freehead.evaluation import metrics as M
    from freehead.perception.tracker import FaceTracker

    with FaceTracker(video=False) as tracker:
        out_m = M.measure_faces(outputs, tracker)
        drv_m = M.measure_faces(drivers, tracker)
        (portrait_m,) = M.measure_faces([portrait], tracker)
    pairs = [(o, d) for o, d in zip(out_m, drv_m, strict=True) if o is not None and d is not None]
    if len(pairs) < 2:
        raise FreeheadError("the demo's output has too few frames with a face to measure")
    o0, d0 = pairs[0]
    head_err, head_motion, gaze_err, gaze_still = [], [], [], []
    for o, d in pairs[1:]:
        delta_o, delta_d = o.head_angles - o0.head_angles, d.head_angles - d0.head_angles
        head_err.append(M.pose_error_deg(delta_o, delta_d))
        head_motion.append(float(np.abs(delta_d).mean()))
        if o.eyes_open and d.eyes_open:
            gaze_err.append(M.angle_between_deg(M.gaze_in_head(o), M.gaze_in_head(d)))
            if portrait_m is not None:
                still = M.angle_between_deg(M.gaze_in_head(portrait_m), M.gaze_in_head(d))
                gaze_still.append(still)
    identity = M.IdentityEncoder()
    ref = identity.descriptor(portrait)
    dists = []
    for img in outputs:
        desc = identity.descriptor(img)
        if ref is not None and desc is not None:
            dists.append(M.identity_distance(ref, desc))
    return FollowFigures(
        measured_frames=len(pairs),
        head_motion_error_deg=round(float(np.mean(head_err)), 2),
        driver_head_motion_deg=round(float(np.mean(head_motion)), 2),
        gaze_in_head_error_deg=_mean(gaze_err, 2),
        portrait_gaze_in_head_error_deg=_mean(gaze_still, 2),
        identity_distance_to_portrait=_mean(dists, 3),
    )


def meshwarp_figures(portrait: np.ndarray, drivers: list[np.ndarray]) -> FollowFigures:
    """:func:`follow_figures` of the no-learning mesh warp on the same driving frames,
    relative to the first of them (as the Reenactor drives)."""
    from freehead.evaluation.methods import MeshWarpMethod

    method = MeshWarpMethod()
    outputs = [method.reenact([portrait], frame, drivers[0]) for frame in drivers]
    return follow_figures(outputs, drivers, portrait)


@dataclass(frozen=True)
class DemoSummary:
    """What ``summary.json`` holds: the inputs, the time per frame, how the output follows
    the driver (:class:`FollowFigures`) and the files written."""

    source: str
    driving: str
    frames: int
    ms_per_frame: float
    follow: FollowFigures
    meshwarp: FollowFigures
    outputs: list[str]

    def to_json(self) -> dict:
        """``summary.json``: the fields, with the follow figures at the top level and
        meshwarp's under ``meshwarp``."""
        out = asdict(self)
        return {**{k: v for k, v in out.items() if k != "follow"}, **out["follow"]}

    def text(self, out: Path) -> str:
        """A short printable summary."""
        f = self.follow
        gaze, ident = f.gaze_in_head_error_deg, f.identity_distance_to_portrait
        return "\n".join([
            f"demo written to {out}/: " + ", ".join(OUTPUTS),
            f"  {self.frames} held-out franck frames drive the astronaut, "
            f"{self.ms_per_frame} ms per frame",
            f"  head motion followed within {f.head_motion_error_deg}° "
            f"(the driver moves {f.driver_head_motion_deg}° on average)",
            f"  gaze (relative to the head) within {gaze}° of the driver's "
            f"(the portrait's own: {f.portrait_gaze_in_head_error_deg}°)"
            if gaze is not None else "  gaze: eyes closed in the measured frames",
            f"  identity distance to the portrait {ident} (dlib; < 0.6 reads as the same person)"
            if ident is not None else "  identity: dlib found no face",
            f"  meshwarp (no learning) on the same frames: head motion within "
            f"{self.meshwarp.head_motion_error_deg}°, gaze within "
            f"{self.meshwarp.gaze_in_head_error_deg}°, identity distance "
            f"{self.meshwarp.identity_distance_to_portrait}",
        ])  # fmt: skip


def _check_out(out: Path, frames: int, overwrite: bool) -> None:
    if frames < 2:
        raise FreeheadError("the demo needs at least 2 frames")
    existing = [n for n in OUTPUTS if (out / n).exists()]
    if existing and not overwrite:
        raise FreeheadError(f"{out} already holds demo outputs ({', '.join(existing)}); "
                            "pass --overwrite or another --out")  # fmt: skip


def _reenact_video(reenactor, source, video, video_path: Path, out: Path, frames: int,
                   progress: bool) -> tuple[list[np.ndarray], list[np.ndarray], float]:  # fmt: skip
    """Write ``reenact.mp4`` -> (every 5th output, its driving frame, seconds taken)."""
    from tqdm import tqdm

    from freehead.apps.video import write_video
    from freehead.inference.reenactor import ReenactOptions

    sampled_out: list[np.ndarray] = []
    sampled_drv: list[np.ndarray] = []
    current: list[np.ndarray] = []  # the driving frame behind the result being made

    def driving() -> Iterator[np.ndarray]:
        for frame in video.frames(frames, DRIVER_START):
            current[:] = [frame]
            yield frame

    def outputs() -> Iterator[np.ndarray]:
        options = ReenactOptions(paste_back="source")
        results = reenactor.reenact_frames(source, driving(), options, video.fps)
        bar = tqdm(results, total=frames, disable=not progress, unit="frame", leave=False)
        for i, result in enumerate(bar):
            if i % 5 == 0:  # the frames the summary measures
                sampled_out.append(result)
                sampled_drv.append(current[0])
            yield result

    t0 = time.perf_counter()
    write_video(out / "reenact.mp4", outputs(), video.fps, audio_from=video_path,
                start=DRIVER_START)  # fmt: skip
    return sampled_out, sampled_drv, time.perf_counter() - t0


def run_demo(out: str | Path, samples: str | Path = "data/samples", frames: int = 150,
             overwrite: bool = False, progress: bool = False, runtime: str = "torch",
             onnx_dir: str | Path | None = None) -> DemoSummary:  # fmt: skip
    """Run the demo into ``out``; returns its summary (also written as summary.json)."""
    from freehead.apps.jobs import freeview_grid, gaze_grid
    from freehead.apps.video import write_image
    from freehead.inference.reenactor import Reenactor
    from freehead.io_utils import atomic_write_json
    from freehead.media import open_frames, read_image

    out = Path(out)
    _check_out(out, frames, overwrite)
    portrait_path, video_path = sample_paths(Path(samples))
    portrait = read_image(portrait_path)
    video = open_frames(video_path)
    frames = min(frames, video.num_frames - DRIVER_START)
    reenactor = Reenactor.from_pretrained(runtime=runtime, onnx_dir=onnx_dir)
    source = reenactor.prepare_source(portrait, names=[str(portrait_path)])
    sampled_out, sampled_drv, seconds = _reenact_video(
        reenactor, source, video, video_path, out, frames, progress
    )
    write_image(
        out / "gaze_grid.png", gaze_grid(reenactor, portrait, (-20, -10, 0, 10, 20), (15, 0, -15))
    )
    write_image(out / "freeview_grid.png",
                freeview_grid(reenactor, source, (-30, -15, 0, 15, 30), (15, 0, -15)))  # fmt: skip
    summary = DemoSummary(
        source=str(portrait_path),
        driving=f"{video_path} frames {DRIVER_START}-{DRIVER_START + frames - 1} (held out)",
        frames=frames,
        ms_per_frame=round(seconds / frames * 1000, 1),
        follow=follow_figures(sampled_out, sampled_drv, portrait),
        meshwarp=meshwarp_figures(portrait, sampled_drv),
        outputs=[str(out / n) for n in OUTPUTS],
    )
    atomic_write_json(out / "summary.json", summary.to_json())
    return summary
