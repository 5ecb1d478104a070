"""How far an iris moves in the image against how far mediapipe's iris landmarks say.

On pairs of frames of ``data/v2``'s clips (eyes open, the head within 6° between them):

1. real eyes: the move of the iris's dark mass in the eye opening (a darkness-weighted
   centroid inside the opening, in the eye's frame) against the move of mediapipe's iris
   centre, along the eye and across it (least-squares slope);
2. moved eyes: each first frame's irises moved by a random known shift (±2.5 px), by
   shifting the opening's content rigidly, by the mesh warp with the iris points as mesh
   vertices (``MeshWarp(eye_slide=False)``) and by the mesh warp with the sliding
   eyeball (``MeshWarp()``); for each, the dark mass's and mediapipe's move against the
   asked shift.

The rigid shift calibrates the dark-mass measure (what it reads of a known move), so
(1) divided by it is how far real irises move per landmark move
(:data:`freehead.perception.eye_slide.IRIS_PIXEL_GAIN`).

    .venv/bin/python benchmarks/iris_move_check.py --data data/v2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from freehead.errors import FreeheadError
from freehead.perception.crop import crop_pixels
from freehead.perception.meshwarp import (
    EYE_CORNERS,
    IRIS,
    MeshWarp,
    WarpTarget,
    face_topology,
    keep_irises_inside,
    track_landmarks,
)
from freehead.perception.tracker import FaceTracker


def eye_coords(landmarks: np.ndarray, eye: int, points: np.ndarray) -> np.ndarray:
    """``points`` ``(N, 2)`` in the eye's frame: along the corners and across, pixels."""
    a, b = landmarks[EYE_CORNERS[eye][0], :2], landmarks[EYE_CORNERS[eye][1], :2]
    u = (b - a) / np.linalg.norm(b - a)
    return (points - (a + b) / 2) @ np.stack([u, [-u[1], u[0]]]).T


def dark_mass(image: np.ndarray, landmarks: np.ndarray, eye: int) -> np.ndarray | None:
    """The darkness-weighted centroid inside the eye opening, in the eye's frame ``(2,)``."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mask = np.zeros(grey.shape, np.uint8)
    loop = landmarks[face_topology().eyes[eye], :2] - 0.5
    cv2.fillPoly(mask, [np.round(loop * 4).astype(np.int32)], 1, shift=2)
    ys, xs = np.nonzero(mask)
    if len(xs) < 10:
        return None
    g = grey[ys, xs]
    w = np.clip(np.percentile(g, 90) - g, 0, None) ** 2
    if w.sum() <= 0:
        return None
    centre = np.array([(xs * w).sum(), (ys * w).sum()]) / w.sum() + 0.5
    return eye_coords(landmarks, eye, centre[None])[0]


def iris_centre(landmarks: np.ndarray, eye: int) -> np.ndarray:
    return eye_coords(landmarks, eye, landmarks[[IRIS[eye][0]], :2])[0]


def rigid_shift(image: np.ndarray, landmarks: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """The eye openings' content moved by ``shift`` (pixels), the rest as it was."""
    h, w = image.shape[:2]
    inside = np.zeros((h, w), np.float32)
    for loop in face_topology().eyes:
        cv2.fillPoly(inside, [np.round(landmarks[loop, :2] - 0.5).astype(np.int32)], 1.0)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, gx - shift[0] * inside, gy - shift[1] * inside, cv2.INTER_LINEAR)


def pairs(data: Path, per_clip: int, rng: np.random.Generator):
    """(first image, its landmarks, second image, its landmarks) of clips' frame pairs."""
    for clip in sorted(p.parent for p in data.glob("clips/**/clip.json")):
        if json.loads((clip / "clip.json").read_text())["frames"] < 100:
            continue
        z = np.load(clip / "labels.npz")
        ok = (z["eye_openness"].min(1) > 0.25) & np.isfinite(z["landmarks"]).all((1, 2))
        frames = np.flatnonzero(ok)
        if len(frames) < 30:
            continue
        for _ in range(per_clip):
            a, b = rng.choice(frames, 2, replace=False)
            if np.abs(z["head_angles"][a] - z["head_angles"][b]).max() > 6:
                continue
            images = [
                cv2.imread(str(clip / f"frames/{i:06d}.jpg"))[..., ::-1].copy() for i in (a, b)
            ]
            size = images[0].shape[0]
            marks = [crop_pixels(z["landmarks"][i], size) for i in (a, b)]
            yield images[0], marks[0], images[1], marks[1]


def slope(x: list, y: list, axis: int) -> float:
    x, y = np.asarray(x)[:, axis], np.asarray(y)[:, axis]
    return float(np.polyfit(x, y, 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/v2"))
    parser.add_argument("--per-clip", type=int, default=30)
    args = parser.parse_args()
    if not (args.data / "clips").is_dir():
        raise SystemExit(f"error: {args.data} is not a dataset folder (no clips/)")
    rng = np.random.default_rng(1)
    warps = {"mesh vertices": MeshWarp(eye_slide=False), "sliding eyeball": MeshWarp()}
    real: dict[str, list] = {"landmarks": [], "dark": []}
    moved: dict[str, dict[str, list]] = {k: {"asked": [], "dark": [], "mediapipe": []}
                                         for k in ("rigid shift", *warps)}  # fmt: skip
    with FaceTracker(video=False) as tracker:
        for first, marks, second, marks2 in pairs(args.data, args.per_clip, rng):
            for eye in (0, 1):
                d1, d2 = dark_mass(first, marks, eye), dark_mass(second, marks2, eye)
                if d1 is not None and d2 is not None:
                    real["landmarks"].append(iris_centre(marks2, eye) - iris_centre(marks, eye))
                    real["dark"].append(d2 - d1)
            shift = rng.uniform(-2.5, 2.5, 2)
            target = marks.copy()
            for eye in (0, 1):
                target[list(IRIS[eye]), :2] += shift
            target = keep_irises_inside(target)
            outputs = {"rigid shift": rigid_shift(first, marks, shift)}
            for name, warp in warps.items():
                source = warp.prepare(first, marks)
                outputs[name] = warp.render(source, WarpTarget(mesh=target, pose=source.pose))
            for name, out in outputs.items():
                try:
                    seen = track_landmarks(tracker, out, "output")
                except FreeheadError:
                    continue
                for eye in (0, 1):
                    d0, d1 = dark_mass(first, marks, eye), dark_mass(out, marks, eye)
                    if d0 is None or d1 is None:
                        continue
                    m = moved[name]
                    m["asked"].append(iris_centre(target, eye) - iris_centre(marks, eye))
                    m["dark"].append(d1 - d0)
                    m["mediapipe"].append(iris_centre(seen, eye) - iris_centre(marks, eye))
    n = len(real["dark"])
    print(f"real eyes ({n} eye pairs): dark mass moves {slope(real['landmarks'], real['dark'], 0):.2f} "
          f"(along) and {slope(real['landmarks'], real['dark'], 1):.2f} (across) x the landmarks' move")  # fmt: skip
    for name, m in moved.items():
        print(f"{name:16s} ({len(m['asked'])} eyes): dark mass {slope(m['asked'], m['dark'], 0):.2f} / "
              f"{slope(m['asked'], m['dark'], 1):.2f}, mediapipe {slope(m['asked'], m['mediapipe'], 0):.2f} / "
              f"{slope(m['asked'], m['mediapipe'], 1):.2f} x the asked shift (along / across)")  # fmt: skip
    rigid = moved["rigid shift"]
    print("so real irises move "
          f"{slope(real['landmarks'], real['dark'], 0) / slope(rigid['asked'], rigid['dark'], 0):.2f} / "
          f"{slope(real['landmarks'], real['dark'], 1) / slope(rigid['asked'], rigid['dark'], 1):.2f} "
          "x their landmarks' move (along / across)")  # fmt: skip


if __name__ == "__main__":
    main()
