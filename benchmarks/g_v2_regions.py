"""Where G v2's learning helps or hurts: held-out L1 inside and outside the regions the
rendering is free to change.

On same-clip pairs of ``--data``'s held-out clips (each clip's first frame the source,
``--per-clip`` later frames spread evenly up to its last the targets), for each G v2 file or training
checkpoint given: the L1 ([0, 1] units) against the target of G's output, of its warped
source (prior + residual flow) and of the source warped by the prior alone, split into
the pixels :func:`freehead.training.gan_losses.correction_weights` leaves free (mouth,
eyes, stretched or folded parts, beyond the source's frame) and the rest. ``--gate`` runs
each G as a gated G v2 (``correction_regions``: it changes the warp only in the free
regions), whatever its file says.

    .venv/bin/python benchmarks/g_v2_regions.py --data data/v2 FRESH_G_V2 runs/g_v2/checkpoints/step_00000500.safetensors
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from freehead.data.dataset import Dataset
from freehead.data.frames import ClipFrames, FrameRef
from freehead.models.generator import Generator, warp
from freehead.models.regions import gate_regions
from freehead.training.data import GeneratorPairs
from freehead.training.gan_losses import correction_weights
from freehead.training.generator_task import spread_targets


def held_out_items(data: str, per_clip: int) -> list[dict]:
    """The held-out pairs as batched items (one source each)."""
    frames = ClipFrames(Dataset(data), "heldout")
    pairs = GeneratorPairs(frames, 1, augment=None, prior=True)
    items = []
    for clip, idx in frames.clip_frames.items():
        source = FrameRef(clip, int(idx[0]))
        for j in spread_targets(len(idx), per_clip):
            item = pairs.item(FrameRef(clip, int(idx[j])), [source], None)
            items.append({k: v[None] for k, v in item.items()})
    return items


def split_l1(image: torch.Tensor, target: torch.Tensor, charged: torch.Tensor) -> np.ndarray:
    """Mean L1 ([0, 1] units) over the free pixels and over the charged ones: ``(2,)``."""
    diff = ((image - target) / 2).abs().mean(1, keepdim=True)
    free = 1 - charged
    return np.array([float((diff * free).sum() / free.sum().clamp_min(1)),
                     float((diff * charged).sum() / charged.sum().clamp_min(1))])  # fmt: skip


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="G v2 model files or training checkpoints")
    parser.add_argument("--data", default="data/v2")
    parser.add_argument("--per-clip", type=int, default=8)
    parser.add_argument("--gate", action="store_true", help="run each G as a gated G v2")
    args = parser.parse_args()
    torch.set_num_threads(2)
    items = held_out_items(args.data, args.per_clip)
    print(f"{len(items)} held-out pairs of {args.data}; L1 free / charged pixels")
    print("| model | output | warped | prior alone |\n|---|---|---|---|")
    for path in args.models:
        g = Generator.from_pretrained(path).eval()
        if args.gate:
            g = g.with_gate()
        rows = []
        for item in items:
            prior = item["source_prior"]
            gate = None
            if g.config.correction_regions:
                gate = gate_regions(item["target_keypoints"], prior)
            out = g(item["source_image"], item["source_sketch"], item["target_sketch"], prior,
                    gate)  # fmt: skip
            charged = correction_weights(item["target_keypoints"], prior[:, 0])
            alone = warp(item["source_image"][:, 0], prior[:, 0])
            target = item["target_image"]
            rows.append(
                [split_l1(x, target, charged) for x in (out.image, out.warped.image, alone)]
            )
        mean = np.mean(rows, axis=0)  # (3, 2)
        cells = " | ".join(f"{free:.4f} / {rest:.4f}" for free, rest in mean)
        name = f"{path} (gated)" if args.gate else path
        print(f"| {name} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
