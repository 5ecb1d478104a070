"""Make the reference files of the pretrained networks, run by TF.js itself.

- ``tests/data/mobilenet_v2_tfjs.npz``: nsfwjs' MobileNetV2 on three still images of
  ``data/samples/stills`` (centre square, 224², bilinear, [0, 1]); each layer's spatial mean,
  and for two layers the top-left 2x2 corner (channels first).
- ``tests/data/faceres_tfjs.npz``: FaceRes on three training faces of
  ``data/samples/people/train`` (resized to 224², bilinear; fed as ``FaceIdentity`` feeds
  it: BGR in 0..255); the 1024-D features and one early layer's spatial mean.

Needs node and ``@tensorflow/tfjs`` installed in a folder (``npm install @tensorflow/tfjs@4``
there), and the models cached (``freehead data fetch-models``)::

    .venv/bin/python benchmarks/tfjs_reference.py --tfjs /tmp/tfjsref [--model faceres]
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
from freehead.models.pretrained import mobilenet_v2_folder, package_folder

STILLS = ("franck_01829.jpg", "franck_02683.jpg", "franck_04117.jpg")
LAYERS = ("Conv1_relu", "block_3_expand_relu", "block_6_expand_relu", "block_10_project_BN")
CORNERS = ("Conv1_relu", "block_10_project_BN")
SIZE = 224
DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
OUT = DATA / "mobilenet_v2_tfjs.npz"
FACES = ("audrey_hepburn/0.png", "barack_obama/0.png", "mona_lisa/0.png")
FACERES_NODES = ("global_pooling/Mean", "conv_pw_1_relu/clip_by_value")
FACERES_OUT = DATA / "faceres_tfjs.npz"


def still_crop(path: Path, size: int = SIZE) -> np.ndarray:
    """The centre square of an image, resized to ``(size, size, 3)`` uint8 (bilinear)."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return np.asarray(image.crop(box).resize((size, size), Image.BILINEAR), dtype=np.uint8)


def face_crop(path: Path, size: int = SIZE) -> np.ndarray:
    """A face image resized to ``(size, size, 3)`` uint8 RGB (bilinear)."""
    image = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def _node_env(tfjs: Path) -> dict[str, str]:
    return {**os.environ, "NODE_PATH": str(tfjs.resolve() / "node_modules")}


def faceres_reference(tfjs: Path, samples: Path) -> None:
    """Run FaceRes in node and write ``FACERES_OUT``."""
    crops = np.stack([face_crop(samples / "people" / "train" / name) for name in FACES])
    bgr = crops[..., ::-1].astype("<f4")
    folder = package_folder("faceres")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "crops.f32").write_bytes(bgr.tobytes())
        out = Path(tmp) / "out.json"
        script = Path(__file__).with_name("tfjs_graph_reference.js")
        cmd = ["node", str(script), str(folder / "faceres.json"), str(folder / "faceres.bin"),
               str(Path(tmp) / "crops.f32"), str(len(FACES)), str(SIZE), str(out), *FACERES_NODES]  # fmt: skip
        subprocess.run(cmd, check=True, cwd=tfjs, env=_node_env(tfjs))
        result = json.loads(out.read_text())
    features, early = (np.array(result[n]["data"], np.float32).reshape(result[n]["shape"])
                       for n in FACERES_NODES)  # fmt: skip
    arrays = {"faces": np.array(FACES), "crop_sums": crops.sum((1, 2, 3)),
              "features": features, "early_mean": early.mean((1, 2))}  # fmt: skip
    with atomic_path(FACERES_OUT, ".npz") as tmp_path:
        np.savez_compressed(tmp_path, **arrays)
    print(f"wrote {FACERES_OUT} ({FACERES_OUT.stat().st_size} bytes)")


def main() -> None:
    """Run the model in node and write the reference file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tfjs", type=Path, required=True, help="folder with @tensorflow/tfjs")
    parser.add_argument("--model", choices=("mobilenet_v2", "faceres"), default="mobilenet_v2")
    parser.add_argument("--samples", type=Path, default=Path("data/samples"))
    args = parser.parse_args()
    if args.model == "faceres":
        faceres_reference(args.tfjs, args.samples)
        return
    stills = args.samples / "stills"
    crops = np.stack([still_crop(stills / name) for name in STILLS])
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        shutil.copytree(mobilenet_v2_folder(), model)
        (Path(tmp) / "crops.f32").write_bytes((crops / 255.0).astype("<f4").tobytes())
        script = Path(__file__).with_name("tfjs_reference.js")
        cmd = ["node", str(script), str(model), str(Path(tmp) / "crops.f32"), str(len(STILLS)),
               str(SIZE), *LAYERS]  # fmt: skip
        subprocess.run(cmd, check=True, cwd=args.tfjs, env=_node_env(args.tfjs))
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
