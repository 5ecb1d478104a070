"""One G training step in float32 and under bfloat16 autocast: time and loss, same run.

    .venv/bin/python benchmarks/g_step_speed.py --data DATASET --config CONFIG
        [--threads 2] [--rounds 4] [--json FILE]

The run config's G, critics and losses, one real batch of DATASET's training samples (the
config's batch size; stills and redirection as configured), and ``GeneratorTask.train_step``
as training runs it, with ``bf16`` off and on. Where no term reaching G reads the critics
(adversarial and feature matching 0: training skips them), a third variant runs them as a
run with a GAN term would (float32, adversarial 1e-9), to show what skipping them saves.
All start from the same weights and take turns on the same batch, one warm-up step each,
then the median of ``--rounds`` steps; the loss terms of their first step are printed side
by side (same weights, same batch: the difference is what bf16 changes).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate

from freehead.config import load_config
from freehead.data.dataset import Dataset
from freehead.io_utils import atomic_write_json
from freehead.training.generator_task import GeneratorRunConfig, GeneratorTask


def main() -> None:
    """Print (and optionally write) seconds per step, the ratio and the first losses."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = Dataset(args.data)
    base = GeneratorTask.resolve_config(load_config(GeneratorRunConfig, args.config))
    variants = {"float32": base, "bf16": replace(base, bf16=True)}
    if not base.loss.uses_critics:
        variants["critics"] = replace(base, loss=replace(base.loss, adversarial=1e-9))
    runs = {}
    for name, config in variants.items():
        task = GeneratorTask(config, dataset)
        torch.manual_seed(0)
        model = task.build_model()
        runs[name] = (task, model, task.build_optimizers(model))
    pairs = runs["float32"][0].train_dataset()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    batch = default_collate([pairs[int(i)] for i in rng.choice(len(pairs), base.train.batch_size)])
    times: dict[str, list[float]] = {name: [] for name in runs}
    first: dict[str, dict[str, float]] = {}
    for round_ in range(args.rounds + 1):
        for name, (task, model, optimizers) in runs.items():
            start = time.perf_counter()
            terms = task.train_step(task.distribute(model, lambda m: m), batch, optimizers)
            if round_:  # the first round warms up
                times[name].append(time.perf_counter() - start)
            else:
                first[name] = {k: float(v.detach()) for k, v in terms.items()}
    medians = {name: float(np.median(t)) for name, t in times.items()}
    print(f"G step, batch {base.train.batch_size}, {args.threads} threads, {args.config}:")
    for name, t in medians.items():
        print(f"  {name:8s} {t:6.2f} s")
    print(f"  speed-up under bf16: x{medians['float32'] / medians['bf16']:.2f}")
    if "critics" in medians:
        print(
            f"  speed-up from skipping the critics: x{medians['critics'] / medians['float32']:.2f}"
        )
    print("  first step's terms:   " + " ".join(f"{name:>10s}" for name in first))
    for key in first["float32"]:
        print(f"    {key:20s} " + " ".join(f"{first[name][key]:10.4f}" for name in first))
    if args.json:
        atomic_write_json(Path(args.json), {"seconds": medians, "first_step": first,
                                            "threads": args.threads})  # fmt: skip


if __name__ == "__main__":
    main()
