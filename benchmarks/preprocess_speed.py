"""Preprocessing speed on the sample video: frames per second at a given crop size.

    .venv/bin/python benchmarks/preprocess_speed.py [--frames 1200] [--size 256] [--workers 1]

Decoding, tracking, labelling, cropping and writing JPEGs all count; the dataset goes to
a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from freehead.data.preprocess import PreprocessOptions, preprocess
from freehead.data.samples import DEFAULT_DIR, fetch_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--samples", default=str(DEFAULT_DIR))
    args = parser.parse_args()
    fetch_samples(args.samples)
    video = Path(args.samples) / "videos" / "franck" / "franck.mp4"
    with tempfile.TemporaryDirectory() as tmp:
        summary = preprocess(
            [str(video)],
            Path(tmp) / "ds",
            PreprocessOptions(size=args.size, max_frames=args.frames),
            workers=args.workers,
            show_progress=False,
        )
    print(
        f"preprocess: {summary.frames_processed} frames at {args.size}px in "
        f"{summary.seconds} s = {summary.frames_per_second} frames/s "
        f"({args.workers} worker(s))"
    )


if __name__ == "__main__":
    main()
