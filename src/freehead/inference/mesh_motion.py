"""G v2's prior flow at inference: the source's face mesh moved as the target motion says.

A G v2 (``flow_prior: mesh``) warps each source by the mesh warp onto a *target mesh*
before it learns anything (:mod:`freehead.models.generator`). At inference every mode makes
a target mesh from the motion G is asked for; where a face drives, from that face's own
mesh, so the prior's pose can differ slightly from the sketch's (E_can's); that mesh is
smoothed as E_can's motion is (the Reenactor's One Euro filter on the driver's landmarks,
``--smoothing``):

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
* **eyes**: both irises turned about their eyeball centres
  (:meth:`freehead.perception.meshwarp.MeshWarp.look`). Asked for a gaze (camera, angles,
  a path, gaze edits, free view), to the sketch's gaze (the mean of the two eyes'
  camera-frame angles). Transferring a driving face's gaze, to the driver's own gaze
  relative to its head as its mesh's eyeball fit reads it
  (:func:`freehead.perception.meshwarp.gaze_in_head`, the labeller's model), with its
  difference from the source's own scaled by ``GAZE_TRANSFER_GAIN``; where either face's
  eyes are shut, to the sketch's gaze (E_gaze's reading).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from freehead.geometry import angles_from_gaze, gaze_from_angles
from freehead.inference.motion import FaceMotion
from freehead.perception.crop import crop_pixels
from freehead.perception.meshwarp import (
    MAX_GAZE_DEG,
    HeadPose,
    MeshWarp,
    WarpSource,
    WarpTarget,
    gaze_in_head,
    head_pose,
    relative_pose,
)

GAZE_TRANSFER_GAIN = 1.0
"""How many times the driver's gaze difference from the source (each relative to its head)
the prior turns the source's eyeballs when transferring a face's gaze. The labeller reads
a slid eyeball less than a real eye moved as far: per pixel of iris move, mediapipe's iris
points follow a real iris by 0.52 and a slid eyeball by 0.31 (``benchmarks/
iris_move_check.py``), and a larger gain reads better: with the training stills as
portraits (``benchmarks/gaze_transfer_check.py``, a fresh G v2), gains 1, 1.5 and 2 read
7.23°, 5.86° and 5.09° gaze-in-head error (the stills' own gaze: 9.53°). But the pictures
got worse: narrow eyes showed the slid iris as a dark block, and lower lids white specks.
A figure that improves while the picture worsens is no gain; learning has to make a slid
eye read as turned."""


@dataclass(frozen=True)
class MeshSource:
    """One source prepared for the prior: its mesh warp (``warp``, crop pixels), the
    motion E_can read from it (``motion``) and its mesh's gaze relative to the head
    (``gaze_in_head``, unit ``(3,)``; None with shut eyes)."""

    warp: WarpSource
    motion: FaceMotion
    gaze_in_head: np.ndarray | None = None


@dataclass(frozen=True)
class DrivenMesh:
    """What a driving face's mesh puts on one source: expression ``offsets`` ``(478, 3)``
    (head-frame units), the head ``pose`` (None: E_can's motion's) and the driver's gaze
    relative to its head (``gaze_in_head``, unit ``(3,)``; None: turn the eyes to the
    asked gaze instead)."""

    offsets: np.ndarray
    pose: HeadPose | None
    gaze_in_head: np.ndarray | None = None


@dataclass(frozen=True)
class DriverMesh:
    """One driving frame's mesh, read once for every source: its head ``pose``, the mesh
    in the head frame (``head`` ``(478, 3)``) and its gaze relative to the head
    (``gaze_in_head``, unit ``(3,)``; None with shut eyes)."""

    pose: HeadPose
    head: np.ndarray
    gaze_in_head: np.ndarray | None


@dataclass(frozen=True)
class MouthGap:
    """Where a target mouth opens wider than its source's: the output's pixels there and
    their weights (``cavity``: rows, columns, weights ``(N,)``, or None;
    :meth:`freehead.perception.meshwarp.MeshWarp.flow_and_cavity`), the target ``mesh``
    ``(478, 3)`` in output pixels and the inner ``lips``' indices (upper, lower)."""

    cavity: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    mesh: np.ndarray
    lips: tuple[np.ndarray, np.ndarray]


class MeshPrior:
    """Prepares sources and makes each frame's prior flows (see the module's text);
    ``gaze_gain``: :data:`GAZE_TRANSFER_GAIN`, for measuring others."""

    def __init__(self, size: int, warper: MeshWarp | None = None,
                 gaze_gain: float = GAZE_TRANSFER_GAIN):  # fmt: skip
        self.size = size
        self.warper = warper or MeshWarp()
        self.gaze_gain = gaze_gain
        self._reference: tuple[np.ndarray, np.ndarray] | None = None

    def prepare(self, crop: np.ndarray, landmarks: np.ndarray, motion: FaceMotion) -> MeshSource:
        """A source crop ``(S, S, 3)`` uint8, its mesh ``(478, 3)`` in crop pixels and the
        motion E_can read from it."""
        warp = self.warper.prepare(crop, landmarks)
        return MeshSource(
            warp, motion, gaze_in_head(warp.landmarks, warp.pose, self.warper.mean_shape)
        )

    def read_driver(self, driver: np.ndarray) -> DriverMesh:
        """A driving face's mesh ``(478, 3)`` (crop pixels), read for :meth:`drive`."""
        pose = head_pose(driver, self.warper.mean_shape)
        gaze = gaze_in_head(driver, pose, self.warper.mean_shape)
        return DriverMesh(pose, pose.invert(driver), gaze)

    def drive(self, source: MeshSource, driver: np.ndarray | DriverMesh | None,
              reference: np.ndarray | None) -> DrivenMesh | None:  # fmt: skip
        """What the driver's mesh (``(478, 3)``, or as :meth:`read_driver` read it, which
        N sources share) puts on ``source``: the expression offsets and the head pose since
        ``reference`` (relative), or the driver's own against the source's mesh when
        ``reference`` is None (absolute), and the driver's gaze (always its own); None
        without a driver."""
        if driver is None:
            return None
        if not isinstance(driver, DriverMesh):
            driver = self.read_driver(driver)
        pose, mesh, gaze = driver.pose, driver.head, driver.gaze_in_head
        if reference is None:
            return DrivenMesh(mesh - source.warp.head, pose, gaze)
        if self._reference is None or self._reference[0] is not reference:
            ref_pose = head_pose(reference, self.warper.mean_shape)  # once per drive
            self._reference = (reference, ref_pose.invert(reference), ref_pose)
        _, ref_mesh, ref_pose = self._reference
        return DrivenMesh(mesh - ref_mesh, relative_pose(source.warp.pose, pose, ref_pose), gaze)

    def _moved_pose(self, source: MeshSource, motion: FaceMotion,
                    driven: DrivenMesh | None) -> HeadPose:  # fmt: skip
        """The target head's pose: the driven one, or E_can's ``motion`` put on the source's
        mesh where that is None."""
        if driven is not None and driven.pose is not None:
            return driven.pose
        m0, pose = source.motion, source.warp.pose
        turn = motion.rotation @ m0.rotation.T
        ratio = motion.scale / m0.scale
        t0 = crop_pixels(m0.translation, self.size)
        t1 = crop_pixels(motion.translation, self.size)
        return HeadPose(rotation=turn @ pose.rotation, scale=pose.scale * ratio,
                        translation=ratio * turn @ (pose.translation - t0) + t1)  # fmt: skip

    def transferred(self, source: MeshSource, motion: FaceMotion,
                    driven: DrivenMesh | None) -> np.ndarray | None:  # fmt: skip
        """The camera-frame (pitch, yaw) ``(2,)`` in degrees the driver's gaze puts on
        ``source`` (see the module's text), within :data:`MAX_GAZE_DEG`; None where there
        is none to transfer (no driver, either face's eyes shut, or a gaze was asked for)."""
        if driven is None or driven.gaze_in_head is None or source.gaze_in_head is None:
            return None
        return self._transfer(source, driven, self._moved_pose(source, motion, driven).rotation)

    def _transfer(self, source: MeshSource, driven: DrivenMesh,
                  rotation: np.ndarray) -> np.ndarray:  # fmt: skip
        """:meth:`transferred` for a target head turned by ``rotation`` ``(3, 3)``; both
        gazes are known."""
        angles = transferred_gaze(source.gaze_in_head, driven.gaze_in_head, rotation,
                                  self.gaze_gain)  # fmt: skip
        return np.clip(angles, -MAX_GAZE_DEG, MAX_GAZE_DEG)

    def aim(self, source: MeshSource, motion: FaceMotion, driven: DrivenMesh | None,
            gaze_angles: np.ndarray, moved: HeadPose | None = None) -> np.ndarray:  # fmt: skip
        """The camera-frame (pitch, yaw) ``(2,)`` in degrees that :meth:`target` turns the
        source's irises to: the driver's gaze transferred (:meth:`transferred`) or else
        ``gaze_angles`` (``(2,)`` or per eye ``(2, 2)``, averaged), within
        :data:`MAX_GAZE_DEG`. ``moved``: the target head's pose, where already known."""
        if (
            driven is not None
            and driven.gaze_in_head is not None
            and source.gaze_in_head is not None
        ):
            pose = moved if moved is not None else self._moved_pose(source, motion, driven)
            rotation = pose.rotation
            return self._transfer(source, driven, rotation)
        asked = np.broadcast_to(np.asarray(gaze_angles, np.float64), (2, 2)).mean(0)
        return np.clip(asked, -MAX_GAZE_DEG, MAX_GAZE_DEG)

    def target(self, source: MeshSource, motion: FaceMotion, driven: DrivenMesh | None,
               gaze_angles: np.ndarray) -> WarpTarget:  # fmt: skip
        """The source's mesh with the ``driven`` offsets at the driven pose (E_can's
        ``motion`` where the pose is None, or without ``driven``), its irises turned as
        :meth:`aim` says."""
        moved = self._moved_pose(source, motion, driven)
        head = source.warp.head if driven is None else source.warp.head + driven.offsets
        target = WarpTarget(mesh=moved.apply(head), pose=moved)
        pitch, yaw = self.aim(source, motion, driven, gaze_angles, moved)
        return self.warper.look(target, float(pitch), float(yaw))

    def flows(self, sources: list[MeshSource], motion: FaceMotion, driven: list,
              gaze_angles: np.ndarray) -> np.ndarray:  # fmt: skip
        """The prior flow of each source, ``(m, 2, S, S)`` float32; ``driven``: per source,
        :meth:`drive`'s answer (or None)."""
        return self.flows_and_mouth(sources, motion, driven, gaze_angles)[0]

    def flows_and_mouth(self, sources: list[MeshSource], motion: FaceMotion, driven: list,
                        gaze_angles: np.ndarray) -> tuple[np.ndarray, MouthGap]:  # fmt: skip
        """:meth:`flows`, and the first source's mouth gap: where its target opens wider
        than it (:mod:`freehead.inference.mouth_fill` fills it)."""
        flows, gap = [], None
        for s, d in zip(sources, driven, strict=True):
            target = self.target(s, motion, d, gaze_angles)
            flow, cavity = self.warper.flow_and_cavity(s.warp, target)
            flows.append(flow)
            if gap is None:
                gap = MouthGap(cavity, target.mesh, self.warper.topology.lips)
        assert gap is not None, "no sources"
        return np.stack(flows), gap


def transferred_gaze(source: np.ndarray, driver: np.ndarray, rotation: np.ndarray,
                     gain: float = GAZE_TRANSFER_GAIN) -> tuple[float, float]:  # fmt: skip
    """The camera-frame (pitch, yaw) in degrees that a source whose gaze relative to its
    head is ``source`` (unit ``(3,)``) is turned to, given a driver's ``driver``: the
    source's angles plus ``gain`` times the difference (head frame), turned by the target
    head's ``rotation`` ``(3, 3)``."""
    own, drv = angles_from_gaze(torch.from_numpy(np.stack([source, driver]))).numpy()
    pitch, yaw = own + gain * (drv - own)
    head = gaze_from_angles(torch.tensor(pitch), torch.tensor(yaw)).numpy()
    pitch, yaw = angles_from_gaze(torch.from_numpy(rotation @ head)).numpy()
    return float(pitch), float(yaw)
