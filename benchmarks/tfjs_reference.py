"""Make ``tests/data/mobilenet_v2_tfjs.npz``: nsfwjs' MobileNetV2 run by TF.js itself.

Needs node and ``@tensorflow/tfjs`` installed in a folder (``npm install @tensorflow/tfjs@4``
there), and the model cached (``freehead data fetch-models``)::

    .venv/bin/python benchmarks/tfjs_reference.py --tfjs /tmp/tfjsref

The crops are three still images of ``data/samples/stills`` (centre square, 224², bilinear);
the file keeps each layer's spatial mean, and for two layers the top-left 2x2 corner
(channels first).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from freehead.io_utils import atomic_path
from freehead.models.pretrained import mobilenet_v2_folder

STILLS = ("franck_01829.jpg", "franck_02683.jpg", "franck_04117.jpg")
LAYERS = ("Conv1_relu", "block_3_expand_relu", "block_6_expand_relu", "block_10_project_BN")
CORNERS = ("Conv1_relu", "block_10_project_BN")
SIZE = 224
OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "mobilenet_v2_tfjs.npz"


def still_crop(path: Path, size: int = SIZE) -> np.ndarray:
    """The centre square of an image, resized to ``(size, size, 3)`` uint8 (bilinear)."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return np.asarray(image.crop(box).resize((size, size), Image.BILINEAR), dtype=np.uint8)


def main() -> None:
    """Run the model in node and write the reference file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tfjs", type=Path, required=True, help="folder with @tensorflow/tfjs")
    parser.add_argument("--stills", type=Path, default=Path("data/samples/stills"))
    args = parser.parse_args()
    crops = np.stack([still_crop(args.stills / name) for name in STILLS])
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        shutil.copytree(mobilenet_v2_folder(), model)
        (Path(tmp) / "crops.f32").write_bytes((crops / 255.0).astype("<f4").tobytes())
        script = Path(__file__).with_name("tfjs_reference.js")
        cmd = ["node", str(script), str(model), str(Path(tmp) / "crops.f32"), str(len(STILLS)),
               str(SIZE), *LAYERS]  # fmt: skip
        env = {**os.environ, "NODE_PATH": str(args.tfjs.resolve() / "node_modules")}
        subprocess.run(cmd, check=True, cwd=args.tfjs, env=env)
        result = json.loads((Path(tmp) / "out.json").read_text())
    arrays: dict[str, np.ndarray] = {"stills": np.array(STILLS), "crop_sums": crops.sum((1, 2, 3))}
    for name in LAYERS:
        nhwc = np.array(result[name]["data"], dtype=np.float32).reshape(result[name]["shape"])
        arrays[f"{name}/mean"] = nhwc.mean((1, 2))
        if name in CORNERS:
            arrays[f"{name}/corner"] = nhwc[:, :2, :2].transpose(0, 3, 1, 2)
    with atomic_path(OUT, ".npz") as tmp_path:
        np.savez_compressed(tmp_path, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
