"""A live soak: ``freehead live``'s pipeline on a looping video file, paced like a camera,
for many minutes; memory, frame times and drops over time.

    .venv/bin/python benchmarks/live_soak.py [--minutes 10] [--runtime onnx] [--json FILE]

The feed is franck.mp4, reopened whenever it ends, delivered at its own frame rate
(24 fps) as a camera would: when the pipeline is busy the oldest frame is dropped
(``freehead.apps.live.FrameFeeder``, the live command's own). The source is the
astronaut portrait. Every 10 s the process's resident memory (RSS) is sampled; every
frame's latency, from entering the pipeline (read ahead included) to its output, is kept.
Per minute: RSS at its end, latency p50 and p99, outputs and drops.

The issue's bars: RSS growth after the first minute at most 20 MB; the last minute's p99
latency within 20 % of the second minute's.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import numpy as np


def rss_mb() -> float:
    """This process's resident memory now (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def looping_reader(path: Path):
    """A read function for :class:`FrameFeeder` that plays ``path`` over and over."""
    from freehead.media import open_frames

    state = {"frames": open_frames(path).frames(), "loops": 0}

    def read():
        frame = next(state["frames"], None)
        if frame is None:
            state["loops"] += 1
            state["frames"] = open_frames(path).frames()
            frame = next(state["frames"], None)
        return frame

    return read, state


def soak(samples: Path, minutes: float, runtime: str, threads: int) -> dict:
    """Run the live pipeline for ``minutes``; the per-minute figures."""
    import torch

    from freehead import Reenactor
    from freehead.apps.live import FrameFeeder, LiveStats
    from freehead.inference.reenactor import ReenactOptions
    from freehead.media import open_frames, read_image

    torch.set_num_threads(threads)
    video = samples / "videos/franck/franck.mp4"
    fps = open_frames(video).fps
    reenactor = Reenactor.from_pretrained(runtime=runtime, threads=threads)
    source = reenactor.prepare_source(read_image(samples / "portraits/astronaut.png"))
    read, state = looping_reader(video)
    stats = LiveStats(input_fps=fps, realtime=True)
    feeder = FrameFeeder(read, fps, True, stats, paced=True)
    pulled: collections.deque[float] = collections.deque()

    def pulling(frames):  # when each frame enters the pipeline (in order; one output each)
        for frame in frames:
            pulled.append(time.perf_counter())
            yield frame

    start = time.perf_counter()
    samples_rss: list[tuple[float, float, int]] = [(0.0, rss_mb(), 0)]
    times: list[tuple[float, float]] = []
    next_sample = 10.0
    outputs = reenactor.stream(source, pulling(feeder), ReenactOptions(), fps=fps)
    try:
        for _ in outputs:
            now = time.perf_counter()
            stats.output()
            times.append((now - start, now - pulled.popleft()))
            if now - start >= next_sample:
                samples_rss.append((now - start, rss_mb(), stats.dropped_frames))
                next_sample += 10.0
            if now - start >= minutes * 60:
                break
    finally:
        outputs.close()  # stops the feeder's thread too
    return summarise(samples_rss, times, stats, state["loops"], runtime, threads, minutes)


def summarise(rss, times, stats, loops, runtime, threads, minutes) -> dict:
    """Per-minute figures and the two bars. ``rss``: (seconds, MB, drops so far) samples;
    ``times``: (seconds, latency) per output."""
    per_minute = []
    for m in range(int(np.ceil(minutes))):
        t = np.array([d for s, d in times if m * 60 <= s < (m + 1) * 60]) * 1000
        inside = [(v, k) for s, v, k in rss if s <= (m + 1) * 60]
        before = [k for s, _, k in rss if s <= m * 60]
        per_minute.append({
            "minute": m + 1, "outputs": len(t),
            "dropped": inside[-1][1] - (before[-1] if before else 0),
            "latency_ms_p50": round(float(np.percentile(t, 50)), 1) if len(t) else None,
            "latency_ms_p99": round(float(np.percentile(t, 99)), 1) if len(t) else None,
            "rss_mb": round(inside[-1][0], 1),
        })  # fmt: skip
    after_first = [v for s, v, _ in rss if s >= 60]
    growth = round(max(after_first) - after_first[0], 1) if len(after_first) > 1 else None
    p99 = [m["latency_ms_p99"] for m in per_minute]
    drift = round(p99[-1] / p99[1] - 1, 3) if len(p99) > 2 and p99[1] else None
    return {
        "minutes": minutes, "runtime": runtime, "threads": threads, "video_loops": loops,
        "outputs": stats.frames, "input_frames": stats.input_frames,
        "dropped_frames": stats.dropped_frames, "per_minute": per_minute,
        "rss_growth_after_first_minute_mb": growth,
        "p99_last_vs_second_minute": drift,
        "rss_samples": [(round(s, 1), round(v, 1)) for s, v, _ in rss],
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", default="data/samples")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--runtime", choices=["torch", "onnx"], default="onnx")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    figures = soak(Path(args.samples), args.minutes, args.runtime, args.threads)
    text = json.dumps(figures, indent=1)
    print(text)
    if args.json:
        from freehead.io_utils import atomic_write_json

        atomic_write_json(Path(args.json), figures)


if __name__ == "__main__":
    main()
