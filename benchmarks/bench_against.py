"""Compare ``freehead bench`` of this checkout with another checkout's, in one run.

    python benchmarks/bench_against.py --base /path/to/other/checkout [--rounds 3]

Runs the two benches alternately (``rounds`` each, same frames, threads and sample data,
this machine's Python) and prints each run's end-to-end per-frame median and the ratio of
the medians over rounds (this / base): the machine's speed drifts, a ratio measured in one
run does not. The other checkout runs from its own ``src`` (``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench(src: Path, samples: Path, frames: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "bench.json"
        env = {**os.environ, "PYTHONPATH": str(src)}
        cmd = [sys.executable, "-m", "freehead", "bench", "--samples", str(samples),
               "--frames", str(frames), "--json", str(out)]  # fmt: skip
        subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=d)
        return json.loads(out.read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True, help="the other checkout (its src/ is used)")
    p.add_argument("--samples", default=str(ROOT / "data" / "samples"))
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    runs: dict[str, list[float]] = {"this": [], "base": []}
    for r in range(args.rounds):
        for name, src in (("base", Path(args.base) / "src"), ("this", ROOT / "src")):
            figures = bench(src, Path(args.samples), args.frames)
            runs[name].append(figures["end_to_end_ms"])
            print(f"round {r + 1} {name}: end_to_end {figures['end_to_end_ms']:.2f} ms, "
                  f"generator {figures['generator_ms']:.2f} ms, "
                  f"tracking {figures['tracking_ms']:.2f} ms", flush=True)  # fmt: skip
    this, base = statistics.median(runs["this"]), statistics.median(runs["base"])
    print(json.dumps({"this_end_to_end_ms": this, "base_end_to_end_ms": base,
                      "ratio": round(this / base, 3)}))  # fmt: skip


if __name__ == "__main__":
    main()
