"""Per-frame time of E_can and E_gaze at batch 1, median after warm-up.

    .venv/bin/python benchmarks/estimator_speed.py [--threads 2] [--keypoints F] [--gaze F]
        [--crop IMAGE] [--json FILE]

E_can counts resizing the 256² crop to its input and the network; E_gaze counts cutting
both eye patches, the network and mapping the meshes back (given E_can's keypoints).
The crop is a real face: the astronaut portrait from the sample data, cropped the way
preprocessing does, unless ``--crop`` names a square face crop.
"""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import asdict
from pathlib import Path

import torch

from freehead.data.samples import DEFAULT_DIR, fetch_samples
from freehead.evaluation.estimators import time_estimators
from freehead.io_utils import atomic_write_json
from freehead.media import read_image
from freehead.models import GazeEstimator, KeypointEstimator
from freehead.perception.crop import crop_image
from freehead.perception.labels import label_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keypoints", default=None, help="E_can file (default: shipped)")
    parser.add_argument("--gaze", default=None, help="E_gaze file (default: shipped)")
    parser.add_argument("--crop", default=None, help="a square face crop (default: astronaut)")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.crop:
        crop = read_image(args.crop)
    else:
        fetch_samples(DEFAULT_DIR)
        portrait = read_image(Path(DEFAULT_DIR) / "portraits" / "astronaut.png")
        crop = crop_image(portrait, label_images([portrait]).box[0], 256)
    kp = KeypointEstimator.from_pretrained(args.keypoints).eval()
    gz = GazeEstimator.from_pretrained(args.gaze).eval()
    figures = time_estimators(crop, kp, gz, repeats=args.repeats)
    result = {
        "threads": args.threads,
        "crop_size": crop.shape[0],
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
    } | {k: round(v, 3) for k, v in asdict(figures).items()}
    print(json.dumps(result, indent=2))
    if args.json:
        atomic_write_json(Path(args.json), result)


if __name__ == "__main__":
    main()
