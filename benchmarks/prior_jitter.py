"""Frame-to-frame jitter of G v2's prior against E_can's and E_gaze's motion, driving a
portrait by a video.

Drives ``--portrait`` by the first ``--frames`` frames of ``--video`` (relatively, as
``freehead reenact`` does) at each ``--smoothing`` strength and records, per frame, the
head pose the prior warps to (the driver's mesh's) beside E_can's, and the gaze the prior
turns the eyes to (the driver mesh's, transferred) beside E_gaze's. Printed: the RMS of
each angle's second difference over frames, in degrees (a still head reads near 0; noise
raises it).

    .venv/bin/python benchmarks/prior_jitter.py --generator FRESH_G_V2
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from freehead.inference.reenactor import Reenactor
from freehead.media import open_frames, read_image


def recording(call: Callable, keep: Callable, into: list) -> Callable:
    """``call`` that also appends ``keep(args, result)`` (when not None) to ``into``."""

    def wrapped(*args):
        result = call(*args)
        if (kept := keep(args, result)) is not None:
            into.append(kept)
        return result

    return wrapped


def angles(rotation: np.ndarray) -> np.ndarray:
    """Yaw, pitch, roll in degrees of a ``(3, 3)`` camera-frame rotation."""
    return Rotation.from_matrix(rotation).as_euler("yxz", degrees=True)


def jitter(series: list) -> np.ndarray:
    """RMS of the second difference of each column of a ``(T, n)`` series."""
    second = np.diff(np.asarray(series, np.float64), 2, axis=0)
    return np.sqrt((second**2).mean(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generator", required=True, help="a G v2 model file")
    parser.add_argument("--portrait", default="data/samples/portraits/astronaut.png")
    parser.add_argument("--video", default="data/samples/videos/franck/franck.mp4")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--smoothing", default="0,1")
    args = parser.parse_args()
    torch.set_num_threads(2)
    reenactor = Reenactor.from_pretrained(generator=args.generator)
    prior = reenactor.mesh
    if prior is None:
        raise SystemExit(f"error: {args.generator} is not a G v2 (it has no mesh prior)")
    rec: dict[str, list] = {"mesh pose": [], "E_can pose": [], "prior gaze": [], "E_gaze": []}
    prior.drive = recording(
        prior.drive, lambda a, d: None if d is None else angles(d.pose.rotation), rec["mesh pose"]
    )

    def e_can_and_e_gaze(args: tuple, _) -> np.ndarray:  # flows(sources, motion, driven, gaze)
        rec["E_gaze"].append(np.broadcast_to(np.asarray(args[3]), (2, 2)).mean(0))
        return angles(args[1].rotation)

    prior.flows = recording(prior.flows, e_can_and_e_gaze, rec["E_can pose"])
    prior.warper.look = recording(prior.warper.look, lambda a, _: a[1:], rec["prior gaze"])
    portrait = read_image(args.portrait)
    frames = list(open_frames(args.video).frames(args.frames))
    print(f"{args.portrait} driven by {len(frames)} frames of {args.video}; jitter in degrees")
    for strength in (float(s) for s in args.smoothing.split(",")):
        for series in rec.values():
            series.clear()
        for _ in reenactor.reenact(portrait, iter(frames), smoothing=strength):
            pass
        for name, series in rec.items():
            names = ("yaw", "pitch", "roll") if "pose" in name else ("pitch", "yaw")
            cells = ", ".join(f"{n} {v:.3f}" for n, v in zip(names, jitter(series), strict=True))
            print(f"  smoothing {strength:g}: {name:10s} {cells}")


if __name__ == "__main__":
    main()
