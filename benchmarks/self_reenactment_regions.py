"""Where self-reenactment's PSNR is lost: inside the face or outside it.

The evaluation's self-reenactment pairs (``freehead evaluate --protocol standard``: each
held-out clip's first usable frame the source, its later frames the drivers), every
``--every``-th driver. For each method and for copying the source, the mean per-image PSNR (the
evaluation's :func:`freehead.evaluation.metrics.psnr`) in the target's face (the convex
hull of its 478 landmarks, grown by 8 px) and outside it; and outside the face for the
source moved by the two frames' crop boxes, which is what a background that stays still in
the frame looks like in the target's crop (the dataset's crops follow the head).

    .venv/bin/python benchmarks/self_reenactment_regions.py --data data/std --every 3
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from freehead.evaluation import metrics as M
from freehead.evaluation.methods import FreeheadMethod, MeshWarpMethod
from freehead.evaluation.protocol import Evaluator, ProtocolConfig

METHODS = {"freehead": FreeheadMethod, "meshwarp": MeshWarpMethod}


def face_region(landmarks: np.ndarray, size: int, grow: int = 8) -> np.ndarray:
    """``(size, size)`` bool: the hull of crop-coordinate landmarks ``(478, 3)``, grown."""
    mask = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(((landmarks[:, :2] + 1) * size / 2).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    return cv2.dilate(mask, np.ones((2 * grow + 1,) * 2, np.uint8)) > 0


def moved_by_boxes(
    source: np.ndarray, source_box: np.ndarray, target_box: np.ndarray
) -> np.ndarray:
    """The source crop resampled into the target's crop box (frame pixels kept still)."""
    size = source.shape[0]
    a = target_box[2] / source_box[2]
    corner = (target_box[:2] - target_box[2] / 2) - (source_box[:2] - source_box[2] / 2)
    off = corner * size / source_box[2] + 0.5 * a - 0.5
    m = np.array([[a, 0.0, off[0]], [0.0, a, off[1]]])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(source, m, (size, size), flags=flags, borderMode=cv2.BORDER_REPLICATE)


def region_psnr(out: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    return M.psnr(M.to_unit(out)[mask], M.to_unit(target)[mask])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="data/std")
    parser.add_argument("--samples", default="data/samples")
    parser.add_argument("--method", default="freehead", choices=sorted(METHODS))
    parser.add_argument("--every", type=int, default=3, help="every n-th driver")
    args = parser.parse_args()
    ev = Evaluator(args.data, args.samples, ProtocolConfig())
    method = METHODS[args.method]()
    rows = []
    for name, (frames, labels) in ev.usable.items():
        first = int(ev.config.source_frames(frames, labels.head_angles)[0])
        source = ev.dataset.frame(name, first)
        method.prepare([source])
        drivers = ev.config.drivers(frames, ev.config.self_stride)  # frames[0] is the source
        for i in drivers[:: max(1, args.every)].astype(int):
            target = ev.dataset.frame(name, int(i))
            out = method.reenact([source], target)
            face = face_region(labels.landmarks[i], target.shape[0])
            moved = moved_by_boxes(source, labels.box[first], labels.box[i])
            rows.append([region_psnr(out, target, face), region_psnr(out, target, ~face),
                         region_psnr(source, target, face), region_psnr(source, target, ~face),
                         region_psnr(moved, target, ~face), face.mean()])  # fmt: skip
    r = np.mean(rows, axis=0)
    print(
        f"{len(rows)} self-reenactment outputs of {len(ev.usable)} held-out clips; face share {r[5]:.2f}"
    )
    print("| | in the face | outside it |\n|---|---|---|")
    print(f"| {args.method} | {r[0]:.2f} dB | {r[1]:.2f} dB |")
    print(f"| copying the source | {r[2]:.2f} dB | {r[3]:.2f} dB |")
    print(f"| copy moved by the boxes | | {r[4]:.2f} dB |")


if __name__ == "__main__":
    main()
