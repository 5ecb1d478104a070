"""How well E_can and E_gaze reproduce the pseudo-labels on held-out frames, and how fast.

Metrics (each averaged over frames):

* ``keypoint_nme_pct``: mean 2D distance between predicted and pseudo-label keypoints,
  as a percentage of the pseudo-label inter-ocular distance (outer eye corners, 36-45),
  the field's usual normalisation;
* ``pose_error_deg``: mean absolute yaw, pitch and roll error (also per angle);
* ``gaze_error_deg``: angle between the predicted gaze (both eyes together) and the
  pseudo-label gaze, on frames with both eyes open (closed eyes have no gaze). E_gaze runs
  on E_can's keypoints, as at inference, when E_can is given;
* ``canonical_identity_ratio``: the mean distance of a frame's p_can to its clip's mean
  p_can (averaged over keypoints), divided by the mean distance between the mean p_can of
  different identities. Small means p_can keeps who it is and drops pose and expression.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from freehead.geometry import angle_between_deg, angles_from_rotation, gaze_from_angles
from freehead.models.backbone import to_network_input
from freehead.models.gaze import GazeEstimator
from freehead.models.keypoints import KeypointEstimator, KeypointPrediction, prepare_crops
from freehead.training.data import ClipFrames, FrameRef

OUTER_EYE_CORNERS = (36, 45)


def keypoint_nme_pct(pred: Tensor, target: Tensor) -> Tensor:
    """Per-frame NME in %. ``(N, K, 3)`` x2 -> ``(N,)``; 2D, over the target's outer-corner IOD."""
    iod = (target[:, OUTER_EYE_CORNERS[1], :2] - target[:, OUTER_EYE_CORNERS[0], :2]).norm(dim=-1)
    return 100 * (pred[..., :2] - target[..., :2]).norm(dim=-1).mean(-1) / iod


def pose_errors_deg(pred_rotation: Tensor, target_angles: Tensor) -> Tensor:
    """``(N, 3, 3)`` rotations vs ``(N, 3)`` yaw/pitch/roll in degrees -> ``(N, 3)`` absolute
    errors, wrapped to [0, 180]."""
    diff = angles_from_rotation(pred_rotation) - target_angles
    return (diff + 180) % 360 - 180


def canonical_identity_ratio(
    canonical: Tensor, clips: Sequence[str], identity: dict[str, str]
) -> float | None:
    """Within-clip spread of p_can ``(N, K, 3)`` over the distance between identities
    (None if fewer than two identities)."""
    names = np.array(clips)
    spreads, id_means = [], {}
    for clip in sorted(set(clips)):
        c = canonical[torch.from_numpy(names == clip)]
        mean = c.mean(0)
        spreads.append((c - mean).norm(dim=-1).mean())
        id_means.setdefault(identity[clip], []).append(c)
    means = [torch.cat(v).mean(0) for _, v in sorted(id_means.items())]
    if len(means) < 2:
        return None
    between = [
        (means[i] - means[j]).norm(dim=-1).mean()
        for i in range(len(means))
        for j in range(i + 1, len(means))
    ]
    return float(torch.stack(spreads).mean() / torch.stack(between).mean())


def _to_cpu(pred: KeypointPrediction) -> KeypointPrediction:
    return KeypointPrediction(**{f.name: getattr(pred, f.name).cpu() for f in fields(pred)})


@torch.inference_mode()
def evaluate_estimators(
    frames: ClipFrames,
    refs: Sequence[FrameRef] | None = None,
    keypoint_model: KeypointEstimator | None = None,
    gaze_model: GazeEstimator | None = None,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> dict[str, object]:
    """Run the given models over ``refs`` (default: every frame of ``frames``) and
    compare with the pseudo-labels. Models should be in eval mode, on any one device."""
    refs = list(frames.frames if refs is None else refs)
    some_model = keypoint_model if keypoint_model is not None else gaze_model
    device = next(some_model.parameters()).device if some_model is not None else None
    kp_nme, pose_err, gaze_err, canon, clips = [], [], [], [], []
    for start in range(0, len(refs), batch_size):
        chunk = refs[start : start + batch_size]
        images = np.stack([frames.image(r) for r in chunk])

        def label(field: str, refs: Sequence[FrameRef] = chunk) -> np.ndarray:
            return np.stack([getattr(frames.labels[r.clip], field)[r.index] for r in refs])

        keypoints = torch.from_numpy(label("keypoints"))
        angles = torch.from_numpy(label("head_angles"))
        face_keypoints = keypoints
        if keypoint_model is not None:
            x = prepare_crops(images, keypoint_model.config.input_size).to(device)
            pred = _to_cpu(keypoint_model(x))
            kp_nme.append(keypoint_nme_pct(pred.keypoints, keypoints))
            pose_err.append(pose_errors_deg(pred.rotation, angles).abs())
            canon.append(pred.canonical)
            clips.extend(r.clip for r in chunk)
            face_keypoints = pred.keypoints
        if gaze_model is not None:
            open_ = np.array([bool(frames.labels[r.clip].eyes_open[r.index]) for r in chunk])
            if open_.any():
                sel = torch.from_numpy(open_)
                g = gaze_model.predict(
                    to_network_input(images[open_]).to(device), face_keypoints[sel].to(device)
                )
                target = label("gaze", [r for r, o in zip(chunk, open_, strict=True) if o])
                target_vec = gaze_from_angles(*torch.from_numpy(target).unbind(-1))
                gaze_err.append(angle_between_deg(g.gaze.cpu(), target_vec))
        if progress is not None:
            progress(len(chunk))
    out: dict[str, object] = {"frames": len(refs)}
    if kp_nme:
        pe = torch.cat(pose_err)
        out |= {
            "keypoint_nme_pct": float(torch.cat(kp_nme).mean()),
            "pose_error_deg": float(pe.mean()),
            "yaw_error_deg": float(pe[:, 0].mean()),
            "pitch_error_deg": float(pe[:, 1].mean()),
            "roll_error_deg": float(pe[:, 2].mean()),
            "canonical_identity_ratio": canonical_identity_ratio(
                torch.cat(canon), clips, frames.identity
            ),
        }
    if gaze_model is not None:
        ge = torch.cat(gaze_err) if gaze_err else torch.zeros(0)
        out |= {"gaze_error_deg": float(ge.mean()) if len(ge) else None, "gaze_frames": len(ge)}
    return out


def median_ms(fn: Callable[[], object], repeats: int = 100, warmup: int = 20) -> float:
    """Median wall time of ``fn()`` in milliseconds after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


@torch.inference_mode()
def time_estimators(
    image: np.ndarray,
    keypoint_model: KeypointEstimator,
    gaze_model: GazeEstimator,
    repeats: int = 100,
) -> dict[str, float]:
    """Per-frame milliseconds at batch 1 on one face crop ``(S, S, 3)`` uint8, input
    preparation included: E_can (resize + network) and E_gaze (patches + network + mesh
    mapping, given keypoints)."""
    keypoints = keypoint_model(keypoint_model.prepare(image)).keypoints

    def run_keypoints() -> object:
        return keypoint_model(keypoint_model.prepare(image))

    def run_gaze() -> object:
        return gaze_model.predict(to_network_input(image), keypoints)

    return {
        "ms_per_frame_keypoints": median_ms(run_keypoints, repeats),
        "ms_per_frame_gaze": median_ms(run_gaze, repeats),
    }


def run_estimator_evaluation(
    data: str | Path,
    split: str = "heldout",
    keypoints_path: str | Path | None = None,
    gaze_path: str | Path | None = None,
    max_frames: int | None = None,
    threads: int = 2,
    show_progress: bool = False,
) -> dict[str, object]:
    """``freehead evaluate-estimators``: the figures of the module docstring plus the
    per-frame timings, for the model files given (default: the shipped ones)."""
    from tqdm import tqdm

    from freehead.data.dataset import Dataset

    torch.set_num_threads(threads)
    kp = KeypointEstimator.from_pretrained(keypoints_path).eval()
    gz = GazeEstimator.from_pretrained(gaze_path).eval()
    frames = ClipFrames(Dataset(data), split)
    refs = frames.evenly_spaced(max_frames) if max_frames else frames.frames
    with tqdm(total=len(refs), disable=not show_progress, desc="evaluate", unit="frame") as bar:
        out = evaluate_estimators(frames, refs, kp, gz, progress=bar.update)
    timing = time_estimators(frames.image(refs[0]), kp, gz)
    return (
        {
            "split": split,
            "keypoints_model": str(keypoints_path or "shipped"),
            "gaze_model": str(gaze_path or "shipped"),
            "threads": threads,
        }
        | out
        | timing
    )
