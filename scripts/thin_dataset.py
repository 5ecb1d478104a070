"""Copy a freehead dataset with fewer frames and no dense landmarks, small enough to send
to a remote training machine (G needs the crops and the 68-keypoint labels, not the 478
mediapipe landmarks, which make up most of ``labels.npz``).

    .venv/bin/python scripts/thin_dataset.py data/ds .gpu/ds [--every 2] [--heldout-frames 120]
    .venv/bin/python scripts/thin_dataset.py data/v2 .gpu/v2 --every 8 --keep-landmarks

Train clips keep every ``--every``-th frame (the original JPEG files, not re-encoded);
held-out clips keep every ``--every``-th of their first ``--heldout-frames`` frames
(enough for training-time validation pictures; evaluate on the full dataset). The
landmarks are replaced by zeros, so the copy is only for training the plain G; with
``--keep-landmarks`` they are kept in half precision (rounded by at most 0.03 px at 256²),
which G v2's mesh prior and still pairs need.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from freehead.data.dataset import Dataset
from freehead.errors import FreeheadError
from freehead.perception.labels import FLAG_OK


def thin(source: Path, dest: Path, every: int, heldout_frames: int,
         keep_landmarks: bool = False) -> dict[str, int]:  # fmt: skip
    """Write the thinned copy; returns frames kept per clip."""
    data = Dataset(source)
    data.settings()  # a clear error if SOURCE is not a dataset
    if dest.exists():
        raise FreeheadError(f"{dest} exists; give a new folder")
    dest.mkdir(parents=True)
    for name in ("dataset.json", "mean_shape.npz"):
        shutil.copy(source / name, dest / name)
    kept: dict[str, int] = {}
    clips = []
    for clip in data.clips():
        src, out = data.clip_dir(clip.name), dest / "clips" / clip.name
        (out / "frames").mkdir(parents=True)
        with np.load(src / "labels.npz", allow_pickle=False) as f:
            labels = {k: f[k] for k in f.files}
        n = len(labels["frame_index"])
        last = n if clip.split == "train" else min(n, heldout_frames)
        keep = np.arange(0, last, every)
        for k, v in labels.items():
            if v.ndim and v.shape[0] == n and k != "frame_size":
                labels[k] = v[keep]
        if keep_landmarks:
            labels["landmarks"] = labels["landmarks"].astype(np.float16)
        else:
            labels["landmarks"] = np.zeros_like(labels["landmarks"])
        np.savez_compressed(out / "labels.npz", **labels)
        for j, i in enumerate(keep):
            shutil.copy(src / "frames" / f"{i:06d}.jpg", out / "frames" / f"{j:06d}.jpg")
        with_face = int((labels["flags"] == FLAG_OK).sum())
        info = json.loads((src / "clip.json").read_text())
        info.update(frames=len(keep), frames_with_face=with_face)
        (out / "clip.json").write_text(json.dumps(info, indent=2))
        clips.append(replace(clip, frames=len(keep), frames_with_face=with_face))
        kept[clip.name] = len(keep)
    manifest = json.loads((source / "manifest.json").read_text())
    manifest["clips"] = [asdict(c) for c in clips]
    manifest["frames"] = sum(c.frames for c in clips)
    manifest["frames_with_face"] = sum(c.frames_with_face for c in clips)
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--every", type=int, default=2)
    parser.add_argument("--heldout-frames", type=int, default=120)
    parser.add_argument("--keep-landmarks", action="store_true",
                        help="keep the 478 landmarks (half precision), for G v2")  # fmt: skip
    args = parser.parse_args()
    try:
        kept = thin(args.source, args.dest, max(1, args.every), args.heldout_frames,
                    args.keep_landmarks)  # fmt: skip
    except FreeheadError as e:
        raise SystemExit(f"thin_dataset: {e}") from None
    for name, n in kept.items():
        print(f"{name}: {n} frames")


if __name__ == "__main__":
    main()
