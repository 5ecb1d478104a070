"""Gaze requests at inference: where the output's eyes look, as numbers.

A request is made from numbers (:meth:`GazeControl.fixed`, :meth:`GazeControl.camera`,
:meth:`GazeControl.along`) and gives camera-frame (pitch, yaw) degrees per frame; text
(the CLI's ``--gaze``) is read once, at the edge, by :meth:`GazeControl.parse`.

The accepted range is what the generator's sketch encodes: the eye colour saturates at
:data:`~freehead.sketch.GAZE_RANGE_DEG` (45°), so a request beyond it would reach G as a
45° request. Such requests are refused, not silently clipped.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from freehead.errors import FreeheadError
from freehead.sketch import GAZE_RANGE_DEG

MAX_GAZE_DEG = GAZE_RANGE_DEG
"""The largest gaze pitch or yaw (degrees) a request may ask for: the sketch's range."""

GAZE_MODES = ("transfer", "camera", "fixed", "path")


def check_gaze_angles(pitch: float, yaw: float) -> None:
    """FreeheadError unless (pitch, yaw) are finite and within ±:data:`MAX_GAZE_DEG`."""
    if not (np.isfinite(pitch) and np.isfinite(yaw)):
        raise FreeheadError("gaze angles must be finite numbers")
    if abs(pitch) > MAX_GAZE_DEG or abs(yaw) > MAX_GAZE_DEG:
        raise FreeheadError(
            f"gaze ({pitch:g}, {yaw:g}) is beyond ±{MAX_GAZE_DEG:g}°, the range the "
            "generator was trained to draw"
        )


@dataclass(frozen=True)
class GazeControl:
    """Where the output's eyes look.

    ``mode``: ``"transfer"`` (the driver's gaze, relative to the head), ``"camera"`` (into
    the camera), ``"fixed"`` (``angles`` (pitch, yaw) in degrees, camera frame) or
    ``"path"`` (``path`` ``(N, 3)`` rows of frame, pitch, yaw; linear in between, held
    beyond the ends). Build it with the class methods, which check the angles.
    """

    mode: str = "transfer"
    angles: tuple[float, float] = (0.0, 0.0)
    path: np.ndarray | None = None

    @classmethod
    def transfer(cls) -> GazeControl:
        return cls(mode="transfer")

    @classmethod
    def camera(cls) -> GazeControl:
        return cls(mode="camera")

    @classmethod
    def fixed(cls, pitch: float, yaw: float) -> GazeControl:
        """Eyes at camera-frame (pitch, yaw) degrees (up and the person's right > 0)."""
        try:
            pitch, yaw = float(pitch), float(yaw)
        except (TypeError, ValueError):
            raise FreeheadError(f"gaze angles must be numbers, not {pitch!r} and {yaw!r}") from None
        check_gaze_angles(pitch, yaw)
        return cls(mode="fixed", angles=(pitch, yaw))

    @classmethod
    def along(cls, path: np.ndarray) -> GazeControl:
        """A gaze path: ``(N, 3)`` rows of (frame, pitch, yaw), in any order."""
        table = np.asarray(path, np.float64)
        if table.ndim != 2 or table.shape[1] != 3 or len(table) == 0:
            raise FreeheadError("a gaze path is rows of (frame, pitch, yaw)")
        for _, pitch, yaw in table:
            check_gaze_angles(pitch, yaw)
        return cls(mode="path", path=table[np.argsort(table[:, 0], kind="stable")])

    @classmethod
    def requested_by(cls, pitch: float | None = None, yaw: float | None = None,
                     path: str | Path | None = None) -> GazeControl:  # fmt: skip
        """What ``freehead gaze`` asks for: ``pitch`` and/or ``yaw`` degrees (the other
        0), or a CSV ``path`` of rows (frame, pitch, yaw); one of the two ways, not both."""
        if path is not None:
            if pitch is not None or yaw is not None:
                raise FreeheadError("give either --pitch/--yaw or --path, not both")
            return cls.along(read_gaze_path(Path(path)))
        if pitch is None and yaw is None:
            raise FreeheadError("give --pitch and/or --yaw (degrees), or --path CSV")
        return cls.fixed(pitch or 0.0, yaw or 0.0)

    @classmethod
    def parse(cls, text: str) -> GazeControl:
        """``transfer``, ``camera``, ``PITCH,YAW`` (degrees) or a CSV file of
        ``frame,pitch,yaw`` rows (a header line is allowed)."""
        t = text.strip()
        if t == "transfer":
            return cls.transfer()
        if t == "camera":
            return cls.camera()
        parts = t.split(",")
        if len(parts) == 2:
            try:
                pitch, yaw = float(parts[0]), float(parts[1])
            except ValueError:
                pass
            else:
                return cls.fixed(pitch, yaw)
        if t.lower().endswith(".csv"):
            return cls.along(read_gaze_path(Path(t)))
        raise FreeheadError(
            f"gaze {text!r}: expected transfer, camera, PITCH,YAW in degrees or a .csv file"
        )

    def target(self, frame: int) -> np.ndarray | None:
        """Camera-frame (pitch, yaw) ``(2,)`` degrees for a frame index, or None to keep
        the transferred gaze."""
        return None if self.mode == "transfer" else self.requested(frame)

    def requested(self, frame: int) -> np.ndarray:
        """Camera-frame (pitch, yaw) ``(2,)`` degrees asked for at a frame index;
        FreeheadError for ``transfer``, which asks for none."""
        if self.mode == "transfer":
            raise FreeheadError("this needs a gaze to turn the eyes to, not gaze transfer")
        if self.mode == "camera":
            return np.zeros(2)
        if self.mode == "fixed":
            return np.asarray(self.angles, np.float64)
        assert self.path is not None
        f = self.path[:, 0]
        return np.array(
            [np.interp(frame, f, self.path[:, 1]), np.interp(frame, f, self.path[:, 2])]
        )


def read_gaze_path(path: Path) -> np.ndarray:
    """A gaze path file: rows of exactly ``frame,pitch,yaw`` -> ``(N, 3)`` (unsorted,
    unchecked)."""
    if not path.is_file():
        raise FreeheadError(f"no such gaze path file: {path}")
    rows = []
    try:
        with open(path, newline="") as f:
            for i, row in enumerate(csv.reader(f)):
                if not row or row[0].lstrip().startswith("#"):
                    continue
                try:
                    rows.append([float(v) for v in row] if len(row) == 3 else None)
                except ValueError:
                    if i == 0:  # a header
                        continue
                    raise FreeheadError(f"{path}: line {i + 1} is not frame,pitch,yaw") from None
                if rows[-1] is None:
                    raise FreeheadError(f"{path}: line {i + 1} is not frame,pitch,yaw")
    except UnicodeDecodeError:
        raise FreeheadError(f"{path} is not a text CSV file") from None
    if not rows:
        raise FreeheadError(f"{path} holds no frame,pitch,yaw rows")
    return np.array(rows, np.float64)
