"""G v2's prior flow at inference: the source's face mesh moved as the target motion says.

A G v2 (``flow_prior: mesh``) warps each source by the mesh warp onto a *target mesh*
before it learns anything (:mod:`freehead.models.generator`). At inference every mode makes
a target mesh from the motion G is asked for; where a face drives, from that face's own
mesh, so the prior's pose can differ slightly from the sketch's (E_can's), and it is not
smoothed as E_can's motion is:

* **pose**: driven by a face, the driver's own mesh's head pose (since the reference frame
  when driving relatively, as :meth:`freehead.perception.meshwarp.MeshWarp.relative`
  does; the driver's when absolutely): G v2 trains on priors made from tracked meshes,
  and the mesh's pose follows the head better than E_can's (on ``data/std``'s held-out
  clips; docs/generator.md). Otherwise (free view, pose requests, gaze edits), E_can's
  motion: it moved the source's keypoints from the source's own ``(R0, t0, s0)`` to the
  target's ``(R1, t1, s1)``, ``p1 = (s1/s0) R1 R0^T (p0 - t0) + t1``, and the same
  similarity moves the source's mesh, so a target equal to the source gives no warp;
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
    head_pose,
    relative_pose,
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

    def drive(self, source: MeshSource, driver: np.ndarray | None,
              reference: np.ndarray | None) -> tuple[np.ndarray, HeadPose] | None:  # fmt: skip
        """What the driver's mesh ``(478, 3)`` puts on ``source``: the expression offsets
        ``(478, 3)`` (head-frame units) and the head pose, since ``reference`` (relative)
        or the driver's own against the source's mesh when ``reference`` is None
        (absolute); None without a driver."""
        if driver is None:
            return None
        pose = head_pose(driver, self.warper.mean_shape)
        mesh = pose.invert(driver)
        if reference is None:
            return mesh - source.warp.head, pose
        if self._reference is None or self._reference[0] is not reference:
            ref_pose = head_pose(reference, self.warper.mean_shape)  # once per drive
            self._reference = (reference, ref_pose.invert(reference), ref_pose)
        _, ref_mesh, ref_pose = self._reference
        return mesh - ref_mesh, relative_pose(source.warp.pose, pose, ref_pose)

    def target(self, source: MeshSource, motion: FaceMotion,
               driven: tuple[np.ndarray, HeadPose | None] | None,
               gaze_angles: np.ndarray) -> WarpTarget:  # fmt: skip
        """The source's mesh with the ``driven`` offsets at the driven pose (E_can's
        ``motion`` where the pose is None, or without ``driven``), its irises turned to
        ``gaze_angles`` (``(2,)`` or per eye ``(2, 2)`` camera-frame pitch, yaw degrees)."""
        offsets, moved = driven if driven is not None else (None, None)
        if moved is None:
            m0, pose = source.motion, source.warp.pose
            turn = motion.rotation @ m0.rotation.T
            ratio = motion.scale / m0.scale
            t0 = crop_pixels(m0.translation, self.size)
            t1 = crop_pixels(motion.translation, self.size)
            moved = HeadPose(rotation=turn @ pose.rotation, scale=pose.scale * ratio,
                             translation=ratio * turn @ (pose.translation - t0) + t1)  # fmt: skip
        head = source.warp.head if offsets is None else source.warp.head + offsets
        target = WarpTarget(mesh=moved.apply(head), pose=moved)
        pitch, yaw = np.broadcast_to(np.asarray(gaze_angles, np.float64), (2, 2)).mean(0)
        pitch, yaw = np.clip((pitch, yaw), -MAX_GAZE_DEG, MAX_GAZE_DEG)
        return self.warper.look(target, float(pitch), float(yaw))

    def flows(self, sources: list[MeshSource], motion: FaceMotion, driven: list,
              gaze_angles: np.ndarray) -> np.ndarray:  # fmt: skip
        """The prior flow of each source, ``(m, 2, S, S)`` float32; ``driven``: per source,
        :meth:`drive`'s answer (or None, or offsets with a None pose)."""
        return np.stack([
            self.warper.flow(s.warp, self.target(s, motion, d, gaze_angles))
            for s, d in zip(sources, driven, strict=True)
        ])  # fmt: skip
