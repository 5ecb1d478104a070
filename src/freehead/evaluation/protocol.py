"""The evaluation protocol (docs/evaluation.md): self-reenactment, cross-identity reenactment and
gaze redirection on a dataset's held-out clips, scored with :mod:`freehead.evaluation.metrics`.

* Self-reenactment: for every held-out clip, source = its first usable frame, drivers =
  every ``self_stride``-th later frame (at most ``max_drivers``, spread over the clip,
  when set); every metric against the driver, identity against the source. With
  ``sources`` = N > 1 (N-shot), N − 1 more sources of the most different head poses
  join the first and are left out of the drivers.
* Cross-identity: sources = each held-out clip's first frame and the public-domain
  portraits (astronaut, Grace Hopper); drivers = every ``cross_stride``-th frame after
  the first of the held-out clips of other identities, each with that first frame as the
  driver's reference for relative motion (as users drive a portrait); identity against
  the source, pose and gaze against the driver, and ``head_motion_error_deg``: the
  output's head rotation since the source against the driver's since its reference
  (yaw/pitch/roll change, mean absolute difference) — what relative motion is asked to
  follow, where ``pose_error_deg`` compares absolute poses.
* Gaze redirection: the same sources, each asked for every (pitch, yaw) of
  ``gaze_grid`` x ``gaze_grid``; gaze error against the request, identity against the
  source, and ``outside_eye_change``: mean absolute change ([0, 1] units) of the pixels
  outside the source's eye regions.

Face measurements (landmarks, pose, gaze) come from the same pseudo-labeller that made the
dataset; a frame where it finds no face in the output counts in ``faces_missing`` and is
left out of the face metrics. Gaze errors use frames whose driver (or source, for
redirection) has both eyes open.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from freehead.data.dataset import Dataset
from freehead.errors import FreeheadError
from freehead.evaluation import metrics as M
from freehead.evaluation.methods import Method
from freehead.evaluation.reference_models import missing_reference_metrics
from freehead.perception.tracker import FaceTracker

log = logging.getLogger("freehead.evaluate")

PORTRAITS = ("astronaut.png", "grace_hopper.jpg")
METRIC_NAMES = (
    "l1", "psnr", "ssim", "akd_px", "gaze_error_deg", "pose_error_deg", "head_motion_error_deg",
    "identity_distance", "csim", "sharpness_ratio", "outside_eye_change", "lpips", "fid",
)  # fmt: skip


@dataclass(frozen=True)
class ProtocolConfig:
    """Sizes of the protocol. The default runs in a few minutes on a 2-core CPU; ``quick``
    in well under one."""

    self_stride: int = 4
    cross_stride: int = 40
    gaze_grid: tuple[float, ...] = (-20.0, -10.0, 0.0, 10.0, 20.0)
    max_drivers: int = 0
    sources: int = 1
    grid_examples: int = 3

    @classmethod
    def quick(cls) -> ProtocolConfig:
        """Three drivers per clip spread over it (none next to the source), every 400th
        frame as a cross-identity driver, a 2 x 2 gaze grid."""
        return cls(self_stride=1, cross_stride=400, gaze_grid=(-20.0, 20.0), max_drivers=3,
                   grid_examples=1)  # fmt: skip

    def source_frames(self, frames: np.ndarray, head_angles: np.ndarray) -> np.ndarray:
        """The self-reenactment sources among a clip's usable ``frames``: the first, then
        (N-shot) each next one the frame whose head yaw/pitch/roll is farthest from those
        already chosen."""
        chosen = [0]
        angles = head_angles[frames]
        for _ in range(1, min(self.sources, len(frames) - 1)):
            gap = np.min(np.linalg.norm(angles[:, None] - angles[chosen][None], axis=-1), axis=1)
            chosen.append(int(np.argmax(gap)))
        return frames[chosen]

    def drivers(self, frames: np.ndarray, stride: int) -> np.ndarray:
        """The driver frames among a clip's usable ``frames`` (the first is the source)."""
        picked = frames[1::stride]
        if self.max_drivers and len(picked) > self.max_drivers:
            at = np.linspace(0, len(picked) - 1, self.max_drivers + 1)[1:].round().astype(int)
            picked = picked[at]
        return picked


@dataclass
class MeasuredSource:
    """A source crop of the protocol with the labeller's reading and its dlib descriptor."""

    name: str
    identity: str
    image: np.ndarray
    measurement: M.FaceMeasurement
    descriptor: np.ndarray | None


@dataclass
class Tally:
    """Per-frame values of one protocol, and its means."""

    values: dict[str, list[float]] = field(default_factory=dict)
    faces_missing: int = 0
    outputs: int = 0
    seconds: float = 0.0

    def add(self, name: str, value: float | None) -> None:
        if value is not None and np.isfinite(value):
            self.values.setdefault(name, []).append(float(value))

    def summary(self, applicable: tuple[str, ...], missing: dict[str, str]) -> ProtocolFigures:
        means = {}
        for name in applicable:
            vals = self.values.get(name, [])
            means[name] = None if name in missing or not vals else round(float(np.mean(vals)), 4)
        return ProtocolFigures(
            metrics=means,
            counts={n: len(self.values.get(n, [])) for n in applicable if n not in missing},
            missing={n: r for n, r in missing.items() if n in applicable},
            outputs=self.outputs,
            faces_missing=self.faces_missing,
            ms_per_frame=round(1000 * self.seconds / self.outputs, 2) if self.outputs else None,
        )


@dataclass(frozen=True)
class ProtocolFigures:
    """One protocol's figures: the mean of each applicable metric (None: no value, or
    ``missing`` with the reason), the frames behind each mean, the outputs made, outputs
    where the labeller found no face, and the method's time per output."""

    metrics: dict[str, float | None]
    counts: dict[str, int]
    missing: dict[str, str]
    outputs: int
    faces_missing: int
    ms_per_frame: float | None

    def to_json(self) -> dict:
        """The metrics at the top level, then the rest (the JSON the suite writes)."""
        out = dict(self.metrics)
        out.update({k: v for k, v in asdict(self).items() if k != "metrics"})
        return out


@dataclass(frozen=True)
class EvaluationResults:
    """A method's figures on every protocol, with what was run and how long it took."""

    method: str
    description: str
    dataset: str
    protocol: ProtocolConfig
    protocols: dict[str, ProtocolFigures]
    ms_per_frame: float
    seconds: float

    def to_json(self) -> dict:
        out: dict = {"method": self.method, "description": self.description,
                     "dataset": self.dataset, "protocol": asdict(self.protocol)}  # fmt: skip
        out.update({name: figures.to_json() for name, figures in self.protocols.items()})
        out.update(ms_per_frame=self.ms_per_frame, seconds=self.seconds)
        return out

    def markdown_table(self) -> str:
        """The means as a markdown table: a column per protocol, a row per metric."""
        return markdown_table(self.to_json())


class Evaluator:
    """Runs the protocol for one method over one dataset's held-out split."""

    def __init__(self, dataset: str | Path, samples: str | Path, config: ProtocolConfig):
        self.dataset = Dataset(dataset)
        self.dataset.settings()
        self.samples = Path(samples)
        self.config = config
        self.identity = M.IdentityEncoder()
        self._driver_cache: dict[tuple[str, int], M.FaceMeasurement | None] = {}
        self.examples: dict[str, list[list[np.ndarray]]] = {}
        clips = [c for c in self.dataset.clips() if c.split == "heldout"]
        if not clips:
            raise FreeheadError(f"{self.dataset.root} has no held-out clips to evaluate on")
        self.clips = clips
        self.usable = {}
        for c in clips:
            labels = self.dataset.labels(c.name)
            frames = np.flatnonzero(labels.valid)
            if len(frames) >= 2:
                self.usable[c.name] = (frames, labels)
        if not self.usable:
            raise FreeheadError("no held-out clip has two frames with a face")
        self.tracker = FaceTracker(video=False)  # one still-image tracker for every measure

    def close(self) -> None:
        self.tracker.close()

    def measure(self, image: np.ndarray) -> M.FaceMeasurement | None:
        """The labeller's reading of one image (None: no face)."""
        return M.measure_faces([image], self.tracker)[0]

    # ------------------------------------------------------------------ sources
    def _source(self, name: str, identity: str, image: np.ndarray) -> MeasuredSource:
        m = self.measure(image)
        if m is None:
            raise FreeheadError(f"no face found in the source {name}")
        return MeasuredSource(name, identity, image, m, M.face_descriptor(self.identity, image, m))

    def clip_sources(self) -> list[MeasuredSource]:
        out = []
        for c in self.clips:
            if c.name in self.usable:
                first = int(self.usable[c.name][0][0])
                out.append(self._source(c.name, c.identity, self.dataset.frame(c.name, first)))
        return out

    def portrait_sources(self) -> list[MeasuredSource]:
        from freehead.media import read_image
        from freehead.perception.labels import portrait_crop

        size = self.dataset.settings().size
        out = []
        for name in PORTRAITS:
            path = self.samples / "portraits" / name
            if not path.is_file():
                raise FreeheadError(f"{path} is missing; run: freehead data fetch-samples")
            crop = portrait_crop(read_image(path), size)
            if crop is None:
                raise FreeheadError(f"no face found in the source {name}")
            out.append(self._source(name, Path(name).stem, crop))
        return out

    def driver_measurement(self, clip: str, index: int, image: np.ndarray):
        key = (clip, index)
        if key not in self._driver_cache:
            self._driver_cache[key] = self.measure(image)
        return self._driver_cache[key]

    # ---------------------------------------------------------------- protocols
    @staticmethod
    def _timed(tally: Tally, fn: Callable[..., np.ndarray], *args: object) -> np.ndarray:
        t = time.perf_counter()
        out = fn(*args)
        tally.seconds += time.perf_counter() - t
        tally.outputs += 1
        return out

    def self_reenactment(self, method: Method, sources: list[MeasuredSource]) -> Tally:
        tally = Tally()
        rows = self.examples.setdefault("self_reenactment", [])
        for src in sources:
            frames, labels = self.usable[src.name]
            picked = self.config.source_frames(frames, labels.head_angles)
            images = [src.image] + [self.dataset.frame(src.name, int(i)) for i in picked[1:]]
            method.prepare(images)
            drivers = self.config.drivers(
                frames[~np.isin(frames, picked[1:])], self.config.self_stride
            )
            for k, index in enumerate(drivers):
                driver = self.dataset.frame(src.name, int(index))
                output = self._timed(tally, method.reenact, images, driver)
                dm = self.driver_measurement(src.name, int(index), driver)
                self._score_pair(tally, src, output, driver, dm, pixels=True)
                if k < self.config.grid_examples:
                    rows.append([src.image, driver, output])
        return tally

    def cross_identity(self, method: Method, sources: list[MeasuredSource]) -> Tally:
        tally = Tally()
        rows = self.examples.setdefault("cross_identity", [])
        for src in sources:
            method.prepare([src.image])
            shown = 0
            for clip, (frames, _) in self.usable.items():
                if self.dataset.clip(clip).identity == src.identity:
                    continue
                reference = self.dataset.frame(clip, int(frames[0]))
                rm = self.driver_measurement(clip, int(frames[0]), reference)
                for index in self.config.drivers(frames, self.config.cross_stride):
                    driver = self.dataset.frame(clip, int(index))
                    output = self._timed(tally, method.reenact, [src.image], driver, reference)
                    dm = self.driver_measurement(clip, int(index), driver)
                    om = self._score_pair(tally, src, output, driver, dm, pixels=False)
                    if om is not None and dm is not None and rm is not None:
                        tally.add("head_motion_error_deg", M.pose_error_deg(
                            om.head_angles - src.measurement.head_angles,
                            dm.head_angles - rm.head_angles))  # fmt: skip
                    if shown < self.config.grid_examples:
                        rows.append([src.image, driver, output])
                        shown += 1
        return tally

    def gaze_redirection(self, method: Method, sources: list[MeasuredSource]) -> Tally:
        import torch

        from freehead.geometry import gaze_from_angles
        from freehead.visualize import draw_caption

        tally = Tally()
        rows = self.examples.setdefault("gaze_redirection", [])
        grid = self.config.gaze_grid
        for src in sources:
            method.prepare([src.image])
            eyes = src.measurement.eye_mask(src.image.shape[:2])
            unit_src = M.to_unit(src.image)
            corners = {(grid[0], grid[0]): None, (grid[-1], grid[-1]): None}
            for pitch in grid:
                for yaw in grid:
                    output = self._timed(tally, method.redirect_gaze, src.image, pitch, yaw)
                    change = M.outside_change(M.to_unit(output), unit_src, eyes)
                    tally.add("outside_eye_change", change)
                    m = self.measure(output)
                    self._score_identity(tally, src, output, m)
                    if m is None:
                        tally.faces_missing += 1
                    elif src.measurement.eyes_open:
                        want = gaze_from_angles(torch.tensor(pitch), torch.tensor(yaw)).numpy()
                        tally.add("gaze_error_deg", M.angle_between_deg(m.gaze, want))
                    if (pitch, yaw) in corners:
                        corners[(pitch, yaw)] = draw_caption(
                            output, f"gaze {pitch:+.0f}, {yaw:+.0f}"
                        )
            rows.append([src.image, *corners.values()])
        return tally

    def _score_identity(self, tally: Tally, src: MeasuredSource, output: np.ndarray, m) -> None:
        if src.descriptor is None:
            return
        d = M.face_descriptor(self.identity, output, m)
        if d is not None:
            tally.add("identity_distance", M.identity_distance(d, src.descriptor))
            tally.add("csim", M.cosine_similarity(d, src.descriptor))

    def _score_pair(
        self, tally: Tally, src: MeasuredSource, output, driver, dm, pixels: bool
    ) -> None:
        om = self.measure(output)
        if pixels:
            o, d = M.to_unit(output), M.to_unit(driver)
            tally.add("l1", M.l1(o, d))
            tally.add("psnr", M.psnr(o, d))
            tally.add("ssim", M.ssim(o, d))
            if dm is not None:
                tally.add("sharpness_ratio", M.sharpness_ratio(o, d, dm.face_mask(d.shape[:2])))
        self._score_identity(tally, src, output, om)
        if om is None:
            tally.faces_missing += 1
            return None
        if dm is None:
            return om
        if pixels:
            tally.add("akd_px", M.keypoint_distance_px(om.keypoints_px, dm.keypoints_px))
        tally.add("pose_error_deg", M.pose_error_deg(om.head_angles, dm.head_angles))
        if dm.eyes_open:
            tally.add("gaze_error_deg", M.angle_between_deg(om.gaze, dm.gaze))
        return om


APPLICABLE = {
    "self_reenactment": ("l1", "psnr", "ssim", "akd_px", "gaze_error_deg", "pose_error_deg",
                         "identity_distance", "csim", "sharpness_ratio", "lpips", "fid"),
    "cross_identity": ("gaze_error_deg", "pose_error_deg", "head_motion_error_deg",
                       "identity_distance", "csim", "fid"),
    "gaze_redirection": ("gaze_error_deg", "identity_distance", "csim", "outside_eye_change"),
}  # fmt: skip


def evaluate(
    method: Method,
    dataset: str | Path,
    samples: str | Path,
    config: ProtocolConfig = ProtocolConfig(),
) -> tuple[EvaluationResults, dict[str, list[list[np.ndarray]]]]:
    """Run every protocol; returns the results and example rows for a grid."""
    started = time.perf_counter()
    ev = Evaluator(dataset, samples, config)
    missing = missing_reference_metrics()
    try:
        clip_sources = ev.clip_sources()
        all_sources = clip_sources + ev.portrait_sources()
        tallies = {
            "self_reenactment": ev.self_reenactment(method, clip_sources),
            "cross_identity": ev.cross_identity(method, all_sources),
            "gaze_redirection": ev.gaze_redirection(method, all_sources),
        }
    finally:
        ev.close()
    total_outputs = sum(t.outputs for t in tallies.values())
    results = EvaluationResults(
        method=method.name,
        description=method.description,
        dataset=str(dataset),
        protocol=config,
        protocols={name: t.summary(APPLICABLE[name], missing) for name, t in tallies.items()},
        ms_per_frame=round(
            1000 * sum(t.seconds for t in tallies.values()) / max(total_outputs, 1), 2
        ),
        seconds=round(time.perf_counter() - started, 1),
    )
    return results, ev.examples


def example_grid(examples: dict[str, list[list[np.ndarray]]]) -> np.ndarray:
    """One picture: a row per example, (source, driver, output) — for gaze redirection
    (source, output at the grid's lowest corner, output at its highest) — under a caption
    row per protocol."""
    from freehead.visualize import draw_caption, grid

    tiles: list[np.ndarray] = []
    for name, rows in examples.items():
        for i, row in enumerate(rows):
            labels = (
                ["source", "", ""] if name == "gaze_redirection" else ["source", "driver", "output"]
            )
            for j, (img, label) in enumerate(zip(row, labels, strict=True)):
                caption = f"{name}\n{label}" if i == 0 and j == 0 else label
                tiles.append(draw_caption(img, caption) if caption else img)
    return grid(tiles, columns=3)


def markdown_table(results: dict) -> str:
    """The means of results' JSON (:meth:`EvaluationResults.to_json`) as a markdown table:
    a column per protocol, a row per metric."""
    names = [n for n in APPLICABLE if isinstance(results.get(n), dict)]
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for metric in (*METRIC_NAMES, "ms_per_frame", "faces_missing"):
        cells = []
        for n in names:
            res = results[n]
            if metric in res:
                v = res[metric]
                cells.append("missing" if v is None and metric in res["missing"] else
                             ("—" if v is None else f"{v:g}"))  # fmt: skip
            else:
                cells.append("")
        if any(cells):
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    reasons = {}
    for n in names:
        reasons.update(results[n]["missing"])
    lines += [f"\n{name}: missing — {why}" for name, why in reasons.items()]
    return "\n".join(lines)
