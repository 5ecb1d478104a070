"""``freehead demo``'s follow figures with other portraits: people the benchmark never uses.

The demo drives the astronaut (a benchmark person, so her figures must not guide tuning)
by held-out franck frames and measures how the pasted-back video follows its driver
(:func:`freehead.apps.demo.follow_figures`: head, gaze-in-head, identity). This runs the
same driving, the same sampling (every 5th frame) and the same measurer with the first
still of each person in ``--stills`` as the portrait (the training stills by default;
``data/val/people`` for people no training reads, ``freehead data fetch-validation``),
for each ``--smoothing`` strength, and prints the means over portraits.

    .venv/bin/python benchmarks/demo_follow_check.py --stills data/val/people --smoothing 1,0.5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from freehead.apps.demo import DRIVER_START, follow_figures, sample_paths
from freehead.data.people import first_faces
from freehead.inference.reenactor import ReenactOptions, Reenactor
from freehead.media import open_frames, read_image

FIGURES = ("head_motion_error_deg", "driver_head_motion_deg", "gaze_in_head_error_deg",
           "portrait_gaze_in_head_error_deg", "identity_distance_to_portrait")  # fmt: skip


def follow(reenactor: Reenactor, portrait: np.ndarray, drivers: list[np.ndarray],
           smoothing: float) -> dict[str, float | None]:  # fmt: skip
    """The demo's figures for one portrait driven by ``drivers`` (every 5th measured)."""
    source = reenactor.prepare_source(portrait)
    options = ReenactOptions(paste_back="source", smoothing=smoothing)
    outputs = list(reenactor.reenact_frames(source, iter(drivers), options, 25.0))
    figures = follow_figures(outputs[::5], drivers[::5], portrait)
    return {k: getattr(figures, k) for k in FIGURES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stills", default="data/samples/people/train")
    parser.add_argument("--samples", default="data/samples")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--smoothing", default="1")
    parser.add_argument("--generator", default=None, help="a G model file (default: shipped)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    paths = first_faces(args.stills)
    if not paths:
        raise SystemExit(f"error: no portraits in {args.stills}")
    _, video_path = sample_paths(Path(args.samples))
    drivers = list(open_frames(video_path).frames(args.frames, DRIVER_START))
    reenactor = Reenactor.from_pretrained(generator=args.generator)
    images = [read_image(p) for p in paths]
    print(f"{len(paths)} portraits from {args.stills}, {len(drivers)} franck frames from "
          f"{DRIVER_START}")  # fmt: skip
    print("| smoothing | " + " | ".join(FIGURES) + " |")
    print("|---" * (len(FIGURES) + 1) + "|")
    for s in (float(x) for x in args.smoothing.split(",")):
        rows = [follow(reenactor, image, drivers, s) for image in images]
        means = [np.mean([r[k] for r in rows if r[k] is not None]) for k in FIGURES]
        print(f"| {s:g} | " + " | ".join(f"{m:.3f}" for m in means) + " |")


if __name__ == "__main__":
    main()
