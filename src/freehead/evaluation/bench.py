"""``freehead bench``: per-frame time of each part of the per-frame path at batch 1, and
of the whole path, on this machine (median over frames after warm-up; threads set).

The per-frame path: tracking (mediapipe, video mode) -> head pose and crop box -> crop at
256² -> E_can -> E_gaze -> gaze-coded sketch -> G's per-frame part (the source, the first
tracked frame, is encoded once and timed apart as ``source_ms``). Frames are the first
``frames`` of the sample video franck.mp4, tracked in order as a video would be.
"""

from __future__ import annotations

import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from freehead.errors import FreeheadError


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def benchmark(
    samples: str | Path,
    threads: int = 2,
    frames: int = 120,
    warmup: int = 20,
    keypoints: str | None = None,
    gaze: str | None = None,
    generator: str | None = None,
) -> dict[str, object]:
    from freehead.geometry import angles_from_gaze
    from freehead.media import open_frames
    from freehead.models import GazeEstimator, KeypointEstimator
    from freehead.models.backbone import to_network_input
    from freehead.models.generator import Generator
    from freehead.perception.crop import CropConfig, boxes_from_pose, crop_image
    from freehead.perception.shape import MeanShape, fit_head_pose
    from freehead.perception.tracker import FaceTracker
    from freehead.sketch import draw_sketch

    if frames < 1 or warmup < 0:
        raise FreeheadError("--frames must be at least 1 and --warmup at least 0")
    torch.set_num_threads(threads)
    video = Path(samples) / "videos" / "franck" / "franck.mp4"
    if not video.is_file():
        raise FreeheadError(f"{video} is missing; run: freehead data fetch-samples")
    clip = list(open_frames(video).frames(warmup + frames))
    e_can = KeypointEstimator.from_pretrained(keypoints).eval()
    e_gaze = GazeEstimator.from_pretrained(gaze).eval()
    g = Generator.from_pretrained(generator).eval()
    size = g.config.image_size
    shape, crop_cfg = MeanShape.default(), CropConfig()
    parts = ("tracking", "crop", "keypoints", "gaze", "sketch", "generator")
    source, source_ms = None, 0.0
    times: dict[str, list[float]] = {p: [] for p in (*parts, "end_to_end")}
    with FaceTracker(video=True) as tracker, torch.inference_mode():
        for i, frame in enumerate(clip):
            t0 = time.perf_counter()
            det = tracker(frame)
            t1 = time.perf_counter()
            if det.landmarks is None:
                continue
            pose = fit_head_pose(torch.from_numpy(det.landmarks[None].astype(np.float64)), shape)
            crop = crop_image(frame, boxes_from_pose(pose, crop_cfg)[0], size)
            t2 = time.perf_counter()
            pred = e_can(e_can.prepare(crop))
            t3 = time.perf_counter()
            eyes = e_gaze.predict(to_network_input(crop), pred.keypoints)
            t4 = time.perf_counter()
            sketch = draw_sketch(pred.keypoints[0].numpy(), angles_from_gaze(eyes.eye_gaze[0]).numpy(),
                                 size)  # fmt: skip
            t5 = time.perf_counter()
            if source is None:  # once per source, not per frame
                source = g.encode_sources(to_network_input(crop)[None],
                                          to_network_input(sketch)[None])  # fmt: skip
                source_ms = (time.perf_counter() - t5) * 1000
            t6 = time.perf_counter()
            g.render_frame(source, to_network_input(sketch), 1)
            t7 = time.perf_counter()
            if i >= warmup:
                spans = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t7 - t6)
                for name, dt in zip(parts, spans, strict=True):
                    times[name].append(dt)
                times["end_to_end"].append(sum(spans))
    if not times["end_to_end"]:
        raise FreeheadError("no face was tracked in the benchmark frames")
    out: dict[str, object] = {
        "threads": threads,
        "frames": len(times["end_to_end"]),
        "crop_size": size,
        "source_ms": round(source_ms, 3),
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    for name, values in times.items():
        out[f"{name}_ms"] = round(float(np.median(values)) * 1000, 3)
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    return out
