"""Per-frame time of meshwarp (the warp alone) and of the tracking it needs, medians.

    .venv/bin/python benchmarks/meshwarp_speed.py [--frames 120] [--size 256] [--json FILE]

The source is the astronaut portrait, the drivers held-out franck.mp4 frames from 4000,
each cropped the way the dataset crops them (``--size``², RGB), driven relatively to the
first. Timed per frame, after five frames of warm-up:

* ``warp_ms``: the warp alone, from the driver's landmarks to the output image
  (``MeshWarp.relative`` + ``MeshWarp.render``), split into ``target_mesh_ms`` and
  ``render_ms`` (rasterising, the backward map and ``cv2.remap``);
* ``tracking_ms``: mediapipe's face mesh on one crop with a still-image tracker (what
  ``freehead evaluate --method meshwarp`` runs per driver), and ``tracking_video_ms``
  with a video tracker (frame to frame, as a live stream would).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from freehead.data.samples import DEFAULT_DIR, fetch_samples
from freehead.io_utils import atomic_write_json
from freehead.media import open_frames, read_image
from freehead.perception.crop import crop_image
from freehead.perception.labels import label_images
from freehead.perception.meshwarp import MeshWarp, track_landmarks
from freehead.perception.tracker import FaceTracker

FIRST_FRAME = 4000
WARM_UP = 5


def crops(samples: Path, frames: int, size: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The portrait's crop and ``frames`` franck.mp4 crops from FIRST_FRAME on."""
    portrait = read_image(samples / "portraits" / "astronaut.png")
    source = crop_image(portrait, label_images([portrait]).box[0], size)
    video = open_frames(samples / "videos" / "franck" / "franck.mp4")
    drivers = list(video.frames(FIRST_FRAME + frames))[FIRST_FRAME:]
    boxes = label_images(drivers, video=True).box
    return source, [crop_image(f, b, size) for f, b in zip(drivers, boxes, strict=True)]


def median_ms(fn: Callable[[int], object], count: int) -> float:
    """Median wall time in ms of ``fn(i)`` for i in range(count), after WARM_UP calls."""
    for i in range(min(WARM_UP, count)):
        fn(i)
    times = []
    for i in range(count):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    fetch_samples(DEFAULT_DIR)
    source_image, drivers = crops(Path(DEFAULT_DIR), args.frames, args.size)
    warp = MeshWarp()
    with FaceTracker(video=False) as still:
        source = warp.prepare(source_image, track_landmarks(still, source_image, "source"))
        landmarks = [track_landmarks(still, d, f"frame {FIRST_FRAME + i}")
                     for i, d in enumerate(drivers)]  # fmt: skip
        tracking = median_ms(lambda i: still(drivers[i]), len(drivers))
    with FaceTracker(video=True) as video:
        tracking_video = median_ms(lambda i: video(drivers[i]), len(drivers))
    reference = landmarks[0]
    targets = [warp.relative(source, lm, reference) for lm in landmarks]
    figures = {
        "frames": len(drivers),
        "size": args.size,
        "warp_ms": median_ms(
            lambda i: warp.render(source, warp.relative(source, landmarks[i], reference)),
            len(drivers),
        ),
        "target_mesh_ms": median_ms(
            lambda i: warp.relative(source, landmarks[i], reference), len(drivers)
        ),
        "render_ms": median_ms(lambda i: warp.render(source, targets[i]), len(drivers)),
        "tracking_ms": tracking,
        "tracking_video_ms": tracking_video,
    }
    result = {
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()},
        "opencv_threads": cv2.getNumThreads(),
        "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        atomic_write_json(Path(args.json), result)


if __name__ == "__main__":
    main()
