"""Protocol ``unseen``: portraits of people no training ever reads, each driven by the
held-out clips of the dataset with relative motion (as users drive a portrait), and each
asked for a grid of gazes.

Per portrait and overall (the mean over portraits), measured by the pseudo-labeller and
dlib, as in :mod:`freehead.evaluation.protocol`:

* ``identity_distance`` to the portrait, and ``identity_same_share``: the share of outputs
  under dlib's same-person threshold (0.6);
* ``head_motion_error_deg``: the output's head rotation since the portrait against the
  driver's since its reference frame (mean absolute yaw/pitch/roll difference), beside
  ``driver_head_motion_deg``, the driver's own mean change (what a still output scores);
* expression following, in inter-ocular distances: ``mouth_open_error`` (the gap between
  the inner lips' middles) and ``brow_raise_error`` (brow middle to upper lid), each the
  output's change since the portrait against the driver's since its reference, beside the
  driver's mean change (``driver_mouth_open_change``, ``driver_brow_raise_change``);
* gaze relative to the head: ``gaze_in_head_error_deg`` (output vs driver), beside
  ``portrait_gaze_in_head_error_deg`` (the portrait's own gaze vs the driver's, what a
  still output scores), and ``gaze_change_error_deg``: the angle between the output's and
  the driver's change of gaze-in-head (yaw, pitch) since the portrait and the reference;
* ``sharpness_ratio``: Laplacian variance inside the face, output over portrait;
* gaze redirection over ``gaze_grid`` x ``gaze_grid``: ``redirection_gaze_error_deg``
  (against the request), ``redirection_identity_distance``,
  ``redirection_outside_eye_change`` (mean change outside the portrait's eye regions).

Gaze figures use frames whose driver (and portrait) have both eyes open.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from freehead.data.dataset import Dataset
from freehead.errors import FreeheadError
from freehead.evaluation import metrics as M
from freehead.evaluation.methods import Method
from freehead.perception.tracker import FaceTracker

log = logging.getLogger("freehead.evaluate")

SAME_PERSON = 0.6
"""dlib's same-person threshold on descriptor distance."""

FIGURES = (
    "identity_distance", "identity_same_share", "head_motion_error_deg",
    "driver_head_motion_deg", "mouth_open_error", "driver_mouth_open_change",
    "brow_raise_error", "driver_brow_raise_change", "gaze_in_head_error_deg",
    "portrait_gaze_in_head_error_deg", "gaze_change_error_deg", "sharpness_ratio",
    "redirection_gaze_error_deg", "redirection_identity_distance",
    "redirection_outside_eye_change",
)  # fmt: skip
"""Every figure, in the order tables show them."""


@dataclass(frozen=True)
class UnseenConfig:
    """Sizes of the protocol: ``frames_per_clip`` driver frames spread over each held-out
    clip (after its reference frame), the gaze grid, at most ``max_portraits`` portraits
    (0: all), and ``grid_frames`` driver frames shown in the picture."""

    frames_per_clip: int = 12
    gaze_grid: tuple[float, ...] = (-20.0, 0.0, 20.0)
    max_portraits: int = 0
    grid_frames: int = 4

    @classmethod
    def quick(cls) -> UnseenConfig:
        return cls(frames_per_clip=2, gaze_grid=(-20.0, 20.0), max_portraits=2, grid_frames=2)


@dataclass(frozen=True)
class PortraitFigures:
    """One portrait's means (None: nothing to measure), its outputs and the outputs in
    which the labeller found no face."""

    figures: dict[str, float | None]
    outputs: int
    faces_missing: int


@dataclass(frozen=True)
class UnseenResults:
    """A method's ``unseen`` figures: per portrait, overall (mean over portraits), and
    the method's time per output."""

    method: str
    description: str
    dataset: str
    protocol: UnseenConfig
    portraits: dict[str, PortraitFigures]
    overall: dict[str, float | None]
    ms_per_frame: float
    seconds: float

    def to_json(self) -> dict:
        return asdict(self) | {"protocol": {"name": "unseen", **asdict(self.protocol)}}

    def markdown_table(self) -> str:
        """Overall means, then one row per portrait with the main figures."""
        lines = ["| figure | overall |", "|---|---|"]
        lines += [f"| {n} | {_cell(self.overall.get(n))} |" for n in FIGURES]
        main = ("identity_distance", "head_motion_error_deg", "mouth_open_error",
                "gaze_in_head_error_deg", "redirection_gaze_error_deg")  # fmt: skip
        lines += ["", "| portrait | " + " | ".join(main) + " |", "|---|" + "---|" * len(main)]
        for name, p in self.portraits.items():
            lines.append(f"| {name} | " + " | ".join(_cell(p.figures.get(n)) for n in main) + " |")
        return "\n".join(lines)


def _cell(v: float | None) -> str:
    return "—" if v is None else f"{v:g}"


# ---------------------------------------------------------------------- measurements
def expression(m: M.FaceMeasurement) -> np.ndarray:
    """(mouth opening, brow raise) of a measurement, in inter-ocular distances: the gap
    between the inner lips' middles (68-point 62, 66), and the mean distance of each brow's
    middle (19, 24) from its upper lid (37-38, 43-44)."""
    k = m.keypoints_px
    iod = float(np.linalg.norm(k[36:42].mean(0) - k[42:48].mean(0)))
    mouth = float(np.linalg.norm(k[66] - k[62]))
    brows = [np.linalg.norm(k[19] - k[37:39].mean(0)), np.linalg.norm(k[24] - k[43:45].mean(0))]
    return np.array([mouth, float(np.mean(brows))]) / max(iod, 1e-6)


@dataclass
class _Portrait:
    name: str
    crop: np.ndarray
    measurement: M.FaceMeasurement
    descriptor: np.ndarray | None
    values: dict[str, list[float]] = field(default_factory=dict)
    outputs: int = 0
    faces_missing: int = 0

    def add(self, name: str, value: float | None) -> None:
        if value is not None and np.isfinite(value):
            self.values.setdefault(name, []).append(float(value))

    def figures(self) -> PortraitFigures:
        means = {n: (round(float(np.mean(v)), 4) if (v := self.values.get(n)) else None)
                 for n in FIGURES}  # fmt: skip
        return PortraitFigures(means, self.outputs, self.faces_missing)


@dataclass(frozen=True)
class _Drive:
    """One driver frame with its reference: the frames and the labeller's readings."""

    reference: np.ndarray
    frame: np.ndarray
    reference_m: M.FaceMeasurement
    frame_m: M.FaceMeasurement


# ---------------------------------------------------------------------- the protocol
class UnseenEvaluator:
    """Runs ``unseen`` for methods over one dataset's held-out clips and a portrait set."""

    def __init__(self, dataset: str | Path, portraits: list[Path], config: UnseenConfig):
        self.dataset = Dataset(dataset)
        self.config = config
        self.tracker = FaceTracker(video=False)
        self.identity = M.IdentityEncoder()
        size = self.dataset.settings().size
        self.portraits: list[_Portrait] = []
        for path in portraits:  # the first max_portraits with a face
            if config.max_portraits and len(self.portraits) == config.max_portraits:
                break
            if (portrait := self._portrait(path, size)) is not None:
                self.portraits.append(portrait)
        if not self.portraits:
            raise FreeheadError("none of the portraits holds a face")
        self.drives = self._drives()
        if not self.drives:
            raise FreeheadError(f"{self.dataset.root} has no held-out clip to drive with")

    def close(self) -> None:
        self.tracker.close()

    def measure(self, image: np.ndarray) -> M.FaceMeasurement | None:
        return M.measure_faces([image], self.tracker)[0]

    def _portrait(self, path: Path, size: int) -> _Portrait | None:
        from freehead.media import read_image
        from freehead.perception.labels import portrait_crop

        try:
            crop = portrait_crop(read_image(path), size)
        except FreeheadError as e:
            log.warning("%s left out: %s", path.name, e)
            return None
        m = self.measure(crop) if crop is not None else None
        if crop is None or m is None:
            log.warning("%s left out: no face found", path.name)
            return None
        return _Portrait(path.stem, crop, m, M.face_descriptor(self.identity, crop, m))

    def _drives(self) -> list[list[_Drive]]:
        """Per held-out identity, its longest held-out clip (clips of one identity may hold
        the same footage): its first usable frame as the reference, and
        ``frames_per_clip`` frames spread over the rest."""
        out = []
        longest: dict[str, tuple[int, str, np.ndarray]] = {}
        for clip in (c for c in self.dataset.clips() if c.split == "heldout"):
            frames = np.flatnonzero(self.dataset.labels(clip.name).valid)
            if len(frames) >= 2 and len(frames) > longest.get(clip.identity, (0,))[0]:
                longest[clip.identity] = (len(frames), clip.name, frames)
        for _, name, frames in sorted(longest.values(), key=lambda x: x[1]):
            rest = frames[1:]
            at = np.linspace(0, len(rest) - 1, self.config.frames_per_clip).round().astype(int)
            reference = self.dataset.frame(name, int(frames[0]))
            rm = self.measure(reference)
            drives = []
            for index in dict.fromkeys(rest[at].tolist()):
                frame = self.dataset.frame(name, int(index))
                fm = self.measure(frame)
                if rm is not None and fm is not None:
                    drives.append(_Drive(reference, frame, rm, fm))
            if drives:
                out.append(drives)
        return out

    # ---------------------------------------------------------------- scoring
    def _identity(self, p: _Portrait, output: np.ndarray, m, name: str) -> None:
        d = M.face_descriptor(self.identity, output, m) if p.descriptor is not None else None
        if d is not None:
            dist = M.identity_distance(d, p.descriptor)
            p.add(name, dist)
            if name == "identity_distance":
                p.add("identity_same_share", float(dist < SAME_PERSON))

    def _score_drive(self, p: _Portrait, output: np.ndarray, d: _Drive) -> None:
        import torch

        from freehead.geometry import angles_from_gaze

        om = self.measure(output)
        self._identity(p, output, om, "identity_distance")
        if om is None:
            p.faces_missing += 1
            return
        pm = p.measurement
        driven = d.frame_m.head_angles - d.reference_m.head_angles
        p.add("head_motion_error_deg", M.pose_error_deg(om.head_angles - pm.head_angles, driven))
        p.add("driver_head_motion_deg", float(np.abs(driven).mean()))
        change_out = expression(om) - expression(pm)
        change_drv = expression(d.frame_m) - expression(d.reference_m)
        for k, name in enumerate(("mouth_open", "brow_raise")):
            p.add(f"{name}_error", abs(change_out[k] - change_drv[k]))
            p.add(f"driver_{name}_change", abs(change_drv[k]))
        if d.frame_m.eyes_open and d.reference_m.eyes_open and pm.eyes_open:
            go, gp, gf, gr = (M.gaze_in_head(x) for x in (om, pm, d.frame_m, d.reference_m))
            p.add("gaze_in_head_error_deg", M.angle_between_deg(go, gf))
            p.add("portrait_gaze_in_head_error_deg", M.angle_between_deg(gp, gf))
            ao, ap, af, ar = angles_from_gaze(torch.from_numpy(np.stack([go, gp, gf, gr]))).numpy()
            moved = (ao - ap) - (af - ar)
            p.add("gaze_change_error_deg", float(np.linalg.norm(moved)))
        mask = pm.face_mask(p.crop.shape[:2])
        p.add("sharpness_ratio", M.sharpness_ratio(M.to_unit(output), M.to_unit(p.crop), mask))

    def _score_redirection(self, method: Method, p: _Portrait) -> float:
        """Redirect the portrait over the gaze grid -> seconds the method took."""
        import torch

        from freehead.geometry import gaze_from_angles

        eyes, unit, seconds = p.measurement.eye_mask(p.crop.shape[:2]), M.to_unit(p.crop), 0.0
        for pitch in self.config.gaze_grid:
            for yaw in self.config.gaze_grid:
                t = time.perf_counter()
                output = method.redirect_gaze(p.crop, pitch, yaw)
                seconds += time.perf_counter() - t
                p.outputs += 1
                p.add(
                    "redirection_outside_eye_change",
                    M.outside_change(M.to_unit(output), unit, eyes),
                )
                m = self.measure(output)
                self._identity(p, output, m, "redirection_identity_distance")
                if m is not None and p.measurement.eyes_open:
                    want = gaze_from_angles(torch.tensor(pitch), torch.tensor(yaw)).numpy()
                    p.add("redirection_gaze_error_deg", M.angle_between_deg(m.gaze, want))
        return seconds

    def run(self, method: Method) -> tuple[dict[str, PortraitFigures], float, list[list]]:
        """Every portrait through ``method`` -> per-portrait figures, seconds in the method,
        and the picture's rows (portrait, then the outputs of the shown driver frames)."""
        shown = set(
            np.linspace(0, len(self.drives[0]) - 1, self.config.grid_frames)
            .round()
            .astype(int)
            .tolist()
        )
        rows: list[list] = [[None, *(self.drives[0][i].frame for i in sorted(shown))]]
        seconds = 0.0
        for p in self.portraits:
            p.values, p.outputs, p.faces_missing = {}, 0, 0
            method.prepare([p.crop])
            row = [p.crop]
            for c, drives in enumerate(self.drives):
                for i, d in enumerate(drives):
                    t = time.perf_counter()
                    output = method.reenact([p.crop], d.frame, d.reference)
                    seconds += time.perf_counter() - t
                    p.outputs += 1
                    self._score_drive(p, output, d)
                    if c == 0 and i in shown:
                        row.append(output)
            seconds += self._score_redirection(method, p)
            rows.append(row)
        return {p.name: p.figures() for p in self.portraits}, seconds, rows


def evaluate_unseen(method: Method, dataset: str | Path, portraits: list[Path],
                    config: UnseenConfig = UnseenConfig()) -> tuple[UnseenResults, np.ndarray]:  # fmt: skip
    """Run ``unseen`` for one method -> results and the picture (a row per portrait:
    the portrait, then its outputs for the same driver frames, under a row of those)."""
    started = time.perf_counter()
    ev = UnseenEvaluator(dataset, portraits, config)
    try:
        per_portrait, seconds, rows = ev.run(method)
    finally:
        ev.close()
    overall = {}
    for n in FIGURES:
        vals = [f.figures[n] for f in per_portrait.values() if f.figures[n] is not None]
        overall[n] = round(float(np.mean(vals)), 4) if vals else None
    outputs = sum(f.outputs for f in per_portrait.values())
    results = UnseenResults(
        method=method.name, description=method.description, dataset=str(dataset),
        protocol=config, portraits=per_portrait, overall=overall,
        ms_per_frame=round(1000 * seconds / max(outputs, 1), 2),
        seconds=round(time.perf_counter() - started, 1),
    )  # fmt: skip
    return results, picture(rows, [p.name for p in ev.portraits])


def picture(rows: list[list], names: list[str]) -> np.ndarray:
    """The rows as one image: the driver frames on top, then a row per portrait."""
    from freehead.visualize import draw_caption, grid

    size = rows[1][0].shape[0]
    blank = np.full((size, size, 3), 255, np.uint8)
    tiles = [blank, *(draw_caption(f, "driver") for f in rows[0][1:])]
    for name, row in zip(names, rows[1:], strict=True):
        tiles += [draw_caption(row[0], name), *row[1:]]
    return grid(tiles, columns=len(rows[0]))


def default_portraits(samples: str | Path) -> list[Path]:
    """The benchmark portraits of the sample data (``portraits/unseen``: people split from
    every training person by face descriptor, :mod:`freehead.data.people`)."""
    from freehead.data.people import benchmark_portraits

    try:
        files = benchmark_portraits(samples)
    except FreeheadError:
        files = []
    if not files or not all(f.is_file() for f in files):
        raise FreeheadError(
            f"{samples} has no benchmark portraits; run: freehead data fetch-samples"
        )
    return files


def portrait_files(folder: Path, hint: str = "") -> list[Path]:
    """The images in a folder, sorted by name; FreeheadError when there are none."""
    from freehead.media import IMAGE_EXTENSIONS

    files = sorted(p for p in Path(folder).glob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise FreeheadError(f"no portrait images in {folder}" + (f"; {hint}" if hint else ""))
    return files
