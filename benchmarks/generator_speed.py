"""G's per-frame and per-source time at batch 1 (median after warm-up), for a run config.

    .venv/bin/python benchmarks/generator_speed.py [--config configs/generator.yaml]
        [--threads 2] [--sources 1] [--json FILE]

Speed does not depend on the weights, so a freshly initialised G of the config is timed.
Per source: encoding the source image and sketch (cached across frames at inference).
Per frame: the target sketch's encoder, flow, warping and rendering.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from freehead.config import load_config
from freehead.evaluation.estimators import median_ms
from freehead.io_utils import atomic_write_json
from freehead.models.generator import Generator
from freehead.training.generator_task import GeneratorRunConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="a generator run config (YAML)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sources", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(GeneratorRunConfig, args.config) if args.config else GeneratorRunConfig()
    g = Generator(config.model).eval()
    s, m = config.model.image_size, args.sources
    images = torch.rand(1, m, 3, s, s) * 2 - 1
    sketches = torch.rand(1, m, 3, s, s) * 2 - 1
    target = torch.rand(1, 3, s, s) * 2 - 1
    with torch.inference_mode():
        sources = g.encode_sources(images, sketches)
        result = {
            "config": args.config or "defaults",
            "image_size": s,
            "sources": m,
            "threads": args.threads,
            "parameters_m": round(sum(p.numel() for p in g.parameters()) / 1e6, 3),
            "per_source_ms": round(
                median_ms(lambda: g.encode_sources(images, sketches), args.repeats), 2
            ),
            "per_frame_ms": round(
                median_ms(lambda: g.render_frame(sources, target, m), args.repeats), 2
            ),
        }
    print(json.dumps(result, indent=2))
    if args.json:
        atomic_write_json(Path(args.json), result)


if __name__ == "__main__":
    main()
