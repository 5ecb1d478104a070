"""``freehead bench``: per-frame time of each stage of the per-frame path at batch 1, and of
the whole path, on this machine (median over frames after warm-up; threads set).

The path timed is the :class:`~freehead.inference.reenactor.Reenactor`'s own, as
``freehead reenact`` runs it (relative motion, gaze transfer, default smoothing, the
crop as output): tracking (mediapipe, video mode) -> head pose and crop box -> crop ->
E_can -> E_gaze -> motion -> gaze-coded sketch -> (a G v2's prior: the mesh warp onto the
target mesh, ``mesh_ms``; 0 for a plain G) -> G's per-frame part. The source, the
first frame of the clip, is prepared once and timed apart as ``source_ms``. Frames are
the first ``frames`` (after ``warmup``) of the sample video franck.mp4, in order.
"""

from __future__ import annotations

import platform
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from freehead.errors import FreeheadError

STAGES = ("tracking", "crop", "keypoints", "gaze", "sketch", "mesh", "generator", "mouth")


@dataclass(frozen=True)
class BenchFigures:
    """Medians in milliseconds per frame. ``end_to_end_ms``: the whole per-frame step of
    the Reenactor's loop (every stage, and the motion and smoothing between them);
    ``stages_ms``: the sum of the stages' medians."""

    threads: int
    frames: int
    crop_size: int
    runtime: str
    precision: str
    source_ms: float
    tracking_ms: float
    crop_ms: float
    keypoints_ms: float
    gaze_ms: float
    sketch_ms: float
    mesh_ms: float
    generator_ms: float
    mouth_ms: float
    stages_ms: float
    end_to_end_ms: float
    peak_rss_mb: float
    torch: str
    machine: str


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _ms(values: list[float]) -> float:
    return round(float(np.median(values)) * 1000, 3)


def benchmark(
    samples: str | Path,
    threads: int = 2,
    frames: int = 120,
    warmup: int = 20,
    generator: str | None = None,
    runtime: str = "torch",
    precision: str = "auto",
) -> BenchFigures:
    """Time the Reenactor's per-frame path on franck.mp4 (see the module's docstring)."""
    from freehead.inference.reenactor import ReenactOptions, Reenactor
    from freehead.inference.timing import StageClock
    from freehead.media import open_frames

    if frames < 1 or warmup < 0:
        raise FreeheadError("the benchmark needs at least 1 timed frame and no negative warm-up")
    torch.set_num_threads(threads)
    video = Path(samples) / "videos" / "franck" / "franck.mp4"
    if not video.is_file():
        raise FreeheadError(f"{video} is missing; run: freehead data fetch-samples")
    clip = list(open_frames(video).frames(warmup + frames))
    reenactor = Reenactor.from_pretrained(generator=generator, runtime=runtime, threads=threads,
                                          precision=precision)  # fmt: skip
    t = time.perf_counter()
    source = reenactor.prepare_source(clip[0])
    source_ms = (time.perf_counter() - t) * 1000
    clock = reenactor.networks.clock = StageClock()
    steps: list[float] = []
    outputs = reenactor.reenact_frames(source, clip, ReenactOptions())
    for i in range(len(clip)):
        if i == warmup:
            clock.clear()
        t = time.perf_counter()
        next(outputs)
        if i >= warmup:
            steps.append(time.perf_counter() - t)
    outputs.close()  # releases the tracker
    stages = {name: _ms(clock.seconds.get(name, [0.0])) for name in STAGES}
    return BenchFigures(
        threads=threads, frames=len(steps), crop_size=reenactor.size, runtime=runtime,
        precision=reenactor.networks.precision,
        source_ms=round(source_ms, 3), **{f"{n}_ms": v for n, v in stages.items()},
        stages_ms=round(sum(stages.values()), 3), end_to_end_ms=_ms(steps),
        peak_rss_mb=round(_peak_rss_mb(), 1), torch=torch.__version__,
        machine=platform.machine(),
    )  # fmt: skip
