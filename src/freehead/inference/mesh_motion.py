"""G v2's prior flow at inference: the source's face mesh moved as the target motion says.

A G v2 (``flow_prior: mesh``) warps each source by the mesh warp onto a *target mesh*
before it learns anything (:mod:`freehead.models.generator`). At inference the target mesh
follows the same motion the sketch is drawn from, so the two agree in every mode:

* **pose**: E_can's motion moved the source's keypoints from the source's own
  ``(R0, t0, s0)`` to the target's ``(R1, t1, s1)``: ``p1 = (s1/s0) R1 R0^T (p0 - t0) + t1``.
  The same similarity moves the source's mesh (relative or absolute driving, free view,
  pose requests alike), so a target equal to the source gives no warp at all;
* **expression**: the driver's dense mesh offsets in its head frame (since the reference
  frame when driving relatively; against the source's mesh when absolutely), added to the
  source's head-frame mesh as :meth:`freehead.perception.meshwarp.MeshWarp.relative` does;
* **eyes**: both irises turned about their eyeball centres to the sketch's gaze (the mean of
  the two eyes' camera-frame angles), so the prior moves the irises where G is asked to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from freehead.inference.motion import FaceMotion
from freehead.perception.crop import crop_pixels
from freehead.perception.meshwarp import (
    MAX_GAZE_DEG,
    HeadPose,
    MeshWarp,
    WarpSource,
    WarpTarget,
)


@dataclass(frozen=True)
class MeshSource:
    """One source prepared for the prior: its mesh warp (``warp``, crop pixels) and the
    motion E_can read from it (``motion``)."""

    warp: WarpSource
    motion: FaceMotion


class MeshPrior:
    """Prepares sources and makes each frame's prior flows (see the module's text)."""

    def __init__(self, size: int, warper: MeshWarp | None = None):
        self.size = size
        self.warper = warper or MeshWarp()
        self._reference: tuple[np.ndarray, np.ndarray] | None = None

    def prepare(self, crop: np.ndarray, landmarks: np.ndarray, motion: FaceMotion) -> MeshSource:
        """A source crop ``(S, S, 3)`` uint8, its mesh ``(478, 3)`` in crop pixels and the
        motion E_can read from it."""
        return MeshSource(self.warper.prepare(crop, landmarks), motion)

    def offsets(self, source: MeshSource, driver: np.ndarray | None,
                reference: np.ndarray | None) -> np.ndarray | None:  # fmt: skip
        """The expression to put on ``source``, ``(478, 3)`` head-frame units: the driver's
        mesh ``(478, 3)`` since ``reference`` (relative), or against the source's own mesh
        when ``reference`` is None (absolute); None without a driver."""
        if driver is None:
            return None
        if reference is None:
            return self.warper.head_mesh(driver) - source.warp.head
        if self._reference is None or self._reference[0] is not reference:
            self._reference = (reference, self.warper.head_mesh(reference))  # once per drive
        return self.warper.head_mesh(driver) - self._reference[1]

    def target(self, source: MeshSource, motion: FaceMotion, offsets: np.ndarray | None,
               gaze_angles: np.ndarray) -> WarpTarget:  # fmt: skip
        """The source's mesh under ``motion`` with ``offsets`` and its irises turned to
        ``gaze_angles`` (``(2,)`` or per eye ``(2, 2)`` camera-frame pitch, yaw degrees)."""
        m0, pose = source.motion, source.warp.pose
        turn = motion.rotation @ m0.rotation.T
        ratio = motion.scale / m0.scale
        t0, t1 = crop_pixels(m0.translation, self.size), crop_pixels(motion.translation, self.size)
        moved = HeadPose(rotation=turn @ pose.rotation, scale=pose.scale * ratio,
                         translation=ratio * turn @ (pose.translation - t0) + t1)  # fmt: skip
        head = source.warp.head if offsets is None else source.warp.head + offsets
        target = WarpTarget(mesh=moved.apply(head), pose=moved)
        pitch, yaw = np.broadcast_to(np.asarray(gaze_angles, np.float64), (2, 2)).mean(0)
        pitch, yaw = np.clip((pitch, yaw), -MAX_GAZE_DEG, MAX_GAZE_DEG)
        return self.warper.look(target, float(pitch), float(yaw))

    def flows(self, sources: list[MeshSource], motion: FaceMotion, offsets: list,
              gaze_angles: np.ndarray) -> np.ndarray:  # fmt: skip
        """The prior flow of each source, ``(m, 2, S, S)`` float32."""
        return np.stack([
            self.warper.flow(s.warp, self.target(s, motion, o, gaze_angles))
            for s, o in zip(sources, offsets, strict=True)
        ])  # fmt: skip
