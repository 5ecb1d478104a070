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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from freehead.data.frames import ClipFrames, FrameRef
from freehead.geometry import angle_between_deg, angles_from_rotation, gaze_from_angles
from freehead.models.backbone import to_network_input
from freehead.models.gaze import GazeEstimator
from freehead.models.keypoints import KeypointEstimator, KeypointPrediction, prepare_crops

OUTER_EYE_CORNERS = (36, 45)


@dataclass(frozen=True)
class KeypointFigures:
    """E_can against the pseudo-labels (the module docstring says what each one is)."""

    keypoint_nme_pct: float
    pose_error_deg: float
    yaw_error_deg: float
    pitch_error_deg: float
    roll_error_deg: float
    canonical_identity_ratio: float | None


@dataclass(frozen=True)
class GazeFigures:
    """E_gaze against the pseudo-labels, over ``gaze_frames`` frames with both eyes open
    (``gaze_error_deg`` is ``None`` without any)."""

    gaze_error_deg: float | None
    gaze_frames: int


@dataclass(frozen=True)
class EstimatorFigures:
    """The figures of :func:`evaluate_estimators` over ``frames`` frames; a model's part is
    ``None`` when that model was not given."""

    frames: int
    keypoints: KeypointFigures | None = None
    gaze: GazeFigures | None = None

    def to_json(self) -> dict[str, object]:
        """One flat object: ``frames``, then the keypoint figures, then the gaze figures
        (those of the models evaluated); also a row of a training run's ``val.csv``."""
        out: dict[str, object] = {"frames": self.frames}
        for part in (self.keypoints, self.gaze):
            if part is not None:
                out |= asdict(part)
        return out


@dataclass(frozen=True)
class EstimatorTimings:
    """Per-frame milliseconds at batch 1 (see :func:`time_estimators`)."""

    ms_per_frame_keypoints: float
    ms_per_frame_gaze: float


@dataclass(frozen=True)
class EstimatorEvaluation:
    """What ``freehead evaluate-estimators`` reports: which models on which split, their
    figures and their speed (:func:`run_estimator_evaluation`)."""

    split: str
    keypoints_model: str
    gaze_model: str
    threads: int
    figures: EstimatorFigures
    timings: EstimatorTimings

    def to_json(self) -> dict[str, object]:
        """One flat object: the run's settings, the figures, then the timings."""
        settings = {"split": self.split, "keypoints_model": self.keypoints_model,
                    "gaze_model": self.gaze_model, "threads": self.threads}  # fmt: skip
        return settings | self.figures.to_json() | asdict(self.timings)


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


@dataclass
class _Errors:
    """Per-frame errors gathered batch by batch."""

    keypoint_nme: list[Tensor] = field(default_factory=list)
    pose: list[Tensor] = field(default_factory=list)
    gaze: list[Tensor] = field(default_factory=list)
    canonical: list[Tensor] = field(default_factory=list)
    clips: list[str] = field(default_factory=list)


@torch.inference_mode()
def evaluate_estimators(
    frames: ClipFrames,
    refs: Sequence[FrameRef] | None = None,
    keypoint_model: KeypointEstimator | None = None,
    gaze_model: GazeEstimator | None = None,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> EstimatorFigures:
    """Run the given models over ``refs`` (default: every frame of ``frames``) and
    compare with the pseudo-labels. Models should be in eval mode, on any one device."""
    refs = list(frames.frames if refs is None else refs)
    errors = _Errors()
    for start in range(0, len(refs), batch_size):
        chunk = refs[start : start + batch_size]
        images = np.stack([frames.image(r) for r in chunk])
        if keypoint_model is not None:  # E_gaze reads the eyes along E_can's keypoints
            face_keypoints = _keypoint_errors(frames, chunk, images, keypoint_model, errors)
        else:
            face_keypoints = torch.from_numpy(_label(frames, chunk, "keypoints"))
        if gaze_model is not None:
            _gaze_errors(frames, chunk, images, face_keypoints, gaze_model, errors)
        if progress is not None:
            progress(len(chunk))
    return EstimatorFigures(
        frames=len(refs),
        keypoints=_keypoint_figures(errors, frames.identity) if errors.keypoint_nme else None,
        gaze=_gaze_figures(errors) if gaze_model is not None else None,
    )


def _label(frames: ClipFrames, refs: Sequence[FrameRef], name: str) -> np.ndarray:
    """One label field of ``refs``, stacked."""
    return np.stack([getattr(frames.labels[r.clip], name)[r.index] for r in refs])


def _keypoint_errors(
    frames: ClipFrames,
    refs: Sequence[FrameRef],
    images: np.ndarray,
    model: KeypointEstimator,
    errors: _Errors,
) -> Tensor:
    """Add E_can's errors on one batch to ``errors``; returns its keypoints (on the CPU)."""
    keypoints = torch.from_numpy(_label(frames, refs, "keypoints"))
    angles = torch.from_numpy(_label(frames, refs, "head_angles"))
    device = next(model.parameters()).device
    pred = _to_cpu(model(prepare_crops(images, model.config.input_size).to(device)))
    errors.keypoint_nme.append(keypoint_nme_pct(pred.keypoints, keypoints))
    errors.pose.append(pose_errors_deg(pred.rotation, angles).abs())
    errors.canonical.append(pred.canonical)
    errors.clips.extend(r.clip for r in refs)
    return pred.keypoints


def _keypoint_figures(errors: _Errors, identity: dict[str, str]) -> KeypointFigures:
    pose = torch.cat(errors.pose)
    return KeypointFigures(
        keypoint_nme_pct=float(torch.cat(errors.keypoint_nme).mean()),
        pose_error_deg=float(pose.mean()),
        yaw_error_deg=float(pose[:, 0].mean()),
        pitch_error_deg=float(pose[:, 1].mean()),
        roll_error_deg=float(pose[:, 2].mean()),
        canonical_identity_ratio=canonical_identity_ratio(
            torch.cat(errors.canonical), errors.clips, identity
        ),
    )


def _gaze_figures(errors: _Errors) -> GazeFigures:
    angles = torch.cat(errors.gaze) if errors.gaze else torch.zeros(0)
    return GazeFigures(
        gaze_error_deg=float(angles.mean()) if len(angles) else None, gaze_frames=len(angles)
    )


def _gaze_errors(
    frames: ClipFrames,
    refs: Sequence[FrameRef],
    images: np.ndarray,
    keypoints: Tensor,
    model: GazeEstimator,
    errors: _Errors,
) -> None:
    """Add E_gaze's errors on the frames of one batch with both eyes open to ``errors``;
    E_gaze reads the eyes along ``keypoints`` ``(B, 68, 3)``."""
    open_ = np.array([bool(frames.labels[r.clip].eyes_open[r.index]) for r in refs])
    if not open_.any():
        return
    device = next(model.parameters()).device
    sel = torch.from_numpy(open_)
    g = model.predict(to_network_input(images[open_]).to(device), keypoints[sel].to(device))
    target = _label(frames, [r for r, o in zip(refs, open_, strict=True) if o], "gaze")
    target_vec = gaze_from_angles(*torch.from_numpy(target).unbind(-1))
    errors.gaze.append(angle_between_deg(g.gaze.cpu(), target_vec))


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
) -> EstimatorTimings:
    """Per-frame milliseconds at batch 1 on one face crop ``(S, S, 3)`` uint8, input
    preparation included: E_can (resize + network) and E_gaze (patches + network + mesh
    mapping, given keypoints)."""
    keypoints = keypoint_model(keypoint_model.prepare(image)).keypoints

    def run_keypoints() -> object:
        return keypoint_model(keypoint_model.prepare(image))

    def run_gaze() -> object:
        return gaze_model.predict(to_network_input(image), keypoints)

    return EstimatorTimings(
        ms_per_frame_keypoints=median_ms(run_keypoints, repeats),
        ms_per_frame_gaze=median_ms(run_gaze, repeats),
    )


def run_estimator_evaluation(
    data: str | Path,
    split: str = "heldout",
    keypoints_path: str | Path | None = None,
    gaze_path: str | Path | None = None,
    max_frames: int | None = None,
    threads: int = 2,
    show_progress: bool = False,
) -> EstimatorEvaluation:
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
        figures = evaluate_estimators(frames, refs, kp, gz, progress=bar.update)
    return EstimatorEvaluation(
        split=split,
        keypoints_model=str(keypoints_path or "shipped"),
        gaze_model=str(gaze_path or "shipped"),
        threads=threads,
        figures=figures,
        timings=time_estimators(frames.image(refs[0]), kp, gz),
    )
