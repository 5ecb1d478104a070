"""What the pretrained losses add to one G training step, as a ratio (same run, same batch).

    .venv/bin/python benchmarks/loss_cost.py --data DATASET [--threads 2] [--rounds 4]
        [--batch 4] [--json FILE]

One real batch of DATASET's training pairs (the run config's batch size, 256², with the
redirection samples), the shipped G architecture and critics, and ``GeneratorTask.train_step``
(G's step and the critics' step, as training runs them) under three loss settings:
L1 + MS-SSIM and no identity loss (what the shipped G trained with), MobileNetV2, and
MobileNetV2 with the FaceRes identity loss. Each setting runs one warm-up step, then the
median of ``--rounds`` steps; the settings take turns round by round so that the machine's
drift hits all alike.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate

from freehead.data.dataset import Dataset
from freehead.io_utils import atomic_write_json
from freehead.training.generator_task import GeneratorRunConfig, GeneratorTask

SETTINGS = {
    "l1_msssim": ("l1_msssim", "none"),
    "mobilenet_v2": ("mobilenet_v2", "none"),
    "mobilenet_v2+faceres": ("mobilenet_v2", "faceres"),
}


def setting(dataset: Dataset, perceptual: str, identity: str, batch: int):
    """A task, its model and optimisers for one loss setting (same seed, same weights)."""
    base = GeneratorRunConfig()
    config = replace(base, perceptual=perceptual, identity=identity,
                     train=replace(base.train, batch_size=batch))  # fmt: skip
    task = GeneratorTask(config, dataset)
    torch.manual_seed(0)
    model = task.build_model()
    return task, model, task.build_optimizers(model)


def main() -> None:
    """Print (and optionally write) seconds per step and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = Dataset(args.data)
    runs = {name: setting(dataset, *kinds, args.batch) for name, kinds in SETTINGS.items()}
    first = next(iter(runs.values()))[0]
    pairs = first.train_dataset()
    rng = np.random.default_rng(0)
    batch = default_collate([pairs[int(i)] for i in rng.choice(len(pairs), args.batch)])
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(args.rounds + 1):
        for name, (task, model, optimizers) in runs.items():
            start = time.perf_counter()
            task.train_step(task.distribute(model, lambda m: m), batch, optimizers)
            if round_:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    base = float(np.median(times["l1_msssim"]))
    figures = {"batch": args.batch, "threads": args.threads, "rounds": args.rounds}
    print(f"G training step, batch {args.batch}, 256², {args.threads} threads, "
          f"median of {args.rounds}:")  # fmt: skip
    for name, t in times.items():
        median = float(np.median(t))
        figures[name] = {"seconds": median, "ratio": median / base}
        print(f"  {name:22s} {median:6.2f} s   x{median / base:.2f}")
    if args.json:
        atomic_write_json(Path(args.json), figures)


if __name__ == "__main__":
    main()
