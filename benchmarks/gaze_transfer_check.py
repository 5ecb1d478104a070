"""G v2's gaze transfer on the training people: ``unseen``'s measurements with their stills
as the portraits, for several gains of the prior's gaze transfer.

``unseen`` itself must not guide tuning (its portraits are the benchmark's people). This
runs its measurer on the first still of each training person in ``--stills`` instead
(group photos left out: their faces are small), driven by ``--data``'s held-out clips, with
G v2's prior turning the eyes by each ``--gains`` value
(:data:`freehead.inference.mesh_motion.GAZE_TRANSFER_GAIN`) or, for ``e``, to E_gaze's
reading of the driver (the sketch's gaze, as before the driver's mesh gave it). A fresh
G v2's output is its prior (docs/generator.md says how to make one), so this measures the
geometry alone. A G trained on the training stills learned them; ``--stills
data/val/people`` (``freehead data fetch-validation``: people no training reads and the
benchmark does not hold) says how it does on faces it never saw. ``--mouth``: what fills a
mouth opened wider than the portrait's (``ReenactOptions.mouth``; default the driver's
interior, as shipped).

    .venv/bin/python benchmarks/gaze_transfer_check.py --generator FRESH_G_V2 --gains e,1,1.5,2
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from freehead.data.people import first_faces
from freehead.evaluation.methods import make_method
from freehead.evaluation.unseen import UnseenConfig, evaluate_unseen
from freehead.inference.reenactor import MOUTH_FILLS

SHOWN = {
    "identity_distance": "identity",
    "head_motion_error_deg": "head°",
    "mouth_open_error": "mouth",
    "gaze_in_head_error_deg": "gaze-in-head°",
    "portrait_gaze_in_head_error_deg": "portrait's own°",
    "gaze_change_error_deg": "gaze change°",
    "sharpness_ratio": "sharpness",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generator", required=True, help="a G v2 model file")
    parser.add_argument("--gains", default="e,1,1.5,2")
    parser.add_argument("--data", default="data/std")
    parser.add_argument("--stills", default="data/samples/people/train")
    parser.add_argument("--frames-per-clip", type=int, default=6)
    parser.add_argument("--mouth", choices=MOUTH_FILLS, default="driver",
                        help="the fill where the mouth opens wider than the portrait's")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    portraits = first_faces(args.stills)
    if not portraits:
        raise SystemExit(f"error: no training stills in {args.stills}")
    method = make_method("freehead", args.generator)
    method.cross_mouth = args.mouth
    if method.reenactor.mesh is None:
        raise SystemExit(f"error: {args.generator} is not a G v2 (it has no mesh prior)")
    config = UnseenConfig(frames_per_clip=args.frames_per_clip, gaze_grid=(0.0,))
    print(f"{len(portraits)} portraits from {args.stills}, driven by {args.data}'s held-out clips")
    print("| gain | " + " | ".join(SHOWN.values()) + " |")
    print("|---" * (len(SHOWN) + 1) + "|")
    prior = method.reenactor.mesh
    drive = prior.drive
    for gain in args.gains.split(","):
        if gain == "e":  # the driver's gaze left out: the eyes turn to the sketch's
            prior.drive = lambda *a: (
                None if (d := drive(*a)) is None else replace(d, gaze_in_head=None)
            )
        else:
            prior.drive, prior.gaze_gain = drive, float(gain)
        results, _ = evaluate_unseen(method, args.data, portraits, config)
        cells = [f"{results.overall[k]:.3f}" for k in SHOWN]
        print(f"| {'E_gaze' if gain == 'e' else gain} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
