"""Gaze redirection on the training people's stills: what a method's irises do when asked.

Each still of ``data/samples/people/train`` (people the benchmark never uses, so this may
guide tuning and checkpoint choice, which the ``unseen`` protocol must not) is cut like a
benchmark portrait and asked for every gaze of a grid ({-20, -10, 0, 10, 20}² degrees,
camera frame). Two readers measure each output: the labeller (mediapipe's irises on an
eyeball fit, the benchmark's measurer) and E_gaze (the shipped network). Printed per
reader: the slope and intercept of measured against asked pitch and yaw, and the mean
angular error; plus the mean change outside the eyes ([0, 1] units).

    .venv/bin/python benchmarks/redirection_check.py --method meshwarp
    .venv/bin/python benchmarks/redirection_check.py --method freehead --generator G.safetensors
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch

from freehead.evaluation import metrics as M
from freehead.evaluation.methods import make_method
from freehead.geometry import angles_from_gaze, gaze_from_angles
from freehead.inference.networks import FaceNetworks
from freehead.media import read_image
from freehead.perception.labels import portrait_crop
from freehead.perception.tracker import FaceTracker

GRID = (-20.0, -10.0, 0.0, 10.0, 20.0)


def e_gaze_angles(networks: FaceNetworks, image: np.ndarray) -> np.ndarray:
    """E_gaze's combined camera-frame (pitch, yaw) in degrees for a crop."""
    reading = networks.read_crop(image)
    gaze = (reading.motion.rotation @ reading.motion.eye_gaze.T).T.sum(0)
    return angles_from_gaze(torch.from_numpy(gaze / np.linalg.norm(gaze))).numpy()


def fit_line(asked: np.ndarray, got: np.ndarray) -> str:
    slope, intercept = np.polyfit(asked, got, 1)
    return f"slope {slope:.2f}, intercept {intercept:+.1f}°"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", default="meshwarp")
    parser.add_argument("--generator", help="G's model file for the freehead method")
    parser.add_argument("--stills", default="data/samples/people/train")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(2)
    method = make_method(args.method, args.generator)
    networks = FaceNetworks.load()
    tracker = FaceTracker(video=False)
    rows: list[tuple] = []  # asked pitch, yaw; labeller pitch, yaw, error; E_gaze ...
    outside = []
    stills = sorted(Path(args.stills).glob("*/*.png")) + sorted(Path(args.stills).glob("*/*.jpg"))
    for path in stills:
        crop = portrait_crop(read_image(path), args.size)
        start = M.measure_faces([crop], tracker)[0] if crop is not None else None
        if start is None or not start.eyes_open:
            continue
        method.prepare([crop])
        eyes = start.eye_mask(crop.shape[:2])
        asks = list(itertools.product(GRID, GRID))
        outputs = [method.redirect_gaze(crop, p, y) for p, y in asks]
        for (p, y), out, m in zip(asks, outputs, M.measure_faces(outputs, tracker), strict=True):
            outside.append(M.outside_change(M.to_unit(out), M.to_unit(crop), eyes))
            if m is None:
                continue
            want = gaze_from_angles(torch.tensor(p), torch.tensor(y)).numpy()
            got = angles_from_gaze(torch.from_numpy(m.gaze)).numpy()
            net = e_gaze_angles(networks, out)
            net_vec = gaze_from_angles(*torch.from_numpy(net)).numpy()
            rows.append((p, y, *got, M.angle_between_deg(m.gaze, want), *net,
                         M.angle_between_deg(net_vec, want)))  # fmt: skip
    if not rows:
        raise SystemExit(f"error: no still in {args.stills} had a face with open eyes to redirect")
    r = np.array(rows)
    print(f"{args.method} {args.generator or ''}: {len({s.parent for s in stills})} people, "
          f"{len(r)} outputs measured")  # fmt: skip
    for name, col in (("labeller", 2), ("E_gaze", 5)):
        print(f"  {name:9s} mean error {r[:, col + 2].mean():5.2f}°; "
              f"pitch {fit_line(r[:, 0], r[:, col])}; yaw {fit_line(r[:, 1], r[:, col + 1])}")  # fmt: skip
    print(f"  change outside the eyes {np.mean(outside):.4f}")


if __name__ == "__main__":
    main()
