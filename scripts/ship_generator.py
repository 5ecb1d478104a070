"""Write a G model file: the one freehead ships, or any other (``--out``).

    .venv/bin/python scripts/ship_generator.py --geometry-only      # what ships today
    .venv/bin/python scripts/ship_generator.py runs/g_v2/checkpoints/step_00003250.safetensors

``--geometry-only`` writes a G v2 (``configs/generator_v2.yaml``'s networks, gated) whose
residual flow and correction are exactly zero: its output is the mesh warp of its source,
with the eyes placed by the eyeball model (docs/generator.md, "The shipped G v2"). The
weights before those zero layers are seeded, so every run writes the same weights. A
training checkpoint or model file is written as G alone, with its config; ``--gated``
turns the gate on for a G trained without one (the same weights).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from freehead.checkpoint import save_model
from freehead.config import load_config
from freehead.errors import FreeheadError
from freehead.models.generator import Generator
from freehead.models.shipped import model_file
from freehead.training.generator_task import GeneratorRunConfig

V2_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "generator_v2.yaml"


def geometry_only() -> Generator:
    """A G v2 with ``generator_v2.yaml``'s networks, gated, its learned part still zero."""
    config = load_config(GeneratorRunConfig, V2_CONFIG).model
    torch.manual_seed(0)
    return Generator(replace(config, correction_regions=True))


def from_file(path: str, gated: bool) -> Generator:
    """G of a training checkpoint or model file; ``gated``: with the gate on."""
    g = Generator.from_pretrained(path)
    return g.with_gate() if gated else g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", help="training checkpoint or G model file")
    parser.add_argument("--geometry-only", action="store_true", help="G v2, learned part zero")
    parser.add_argument("--gated", action="store_true", help="turn the gate on (G v2)")
    parser.add_argument("--out", default=None, help="model file (default: the shipped G)")
    args = parser.parse_args()
    if args.geometry_only == (args.checkpoint is not None):
        parser.error("give either a checkpoint or --geometry-only")
    try:
        g = geometry_only() if args.geometry_only else from_file(args.checkpoint, args.gated)
        out = Path(args.out) if args.out else model_file("generator")
        save_model(out, g.eval(), "generator", g.config)
    except FreeheadError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"{out}: G, {g.config.flow_prior} prior, gated: {g.config.correction_regions}")


if __name__ == "__main__":
    main()
